//! Columnar rows of one series, as the read path returns them.

use crate::model::{FieldValue, SeriesId, SeriesKind, ValueType};
use std::sync::Arc;

/// Values of one column, one slot per row. Slots of rows where the field is absent hold a
/// default (0, false, empty) and are marked invalid in [`Column::validity`].
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues {
    /// Floats.
    F64(Vec<f64>),
    /// Integers.
    I64(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
    /// Strings.
    Str(Vec<String>),
    /// Byte strings.
    Bytes(Vec<Vec<u8>>),
}

impl ColumnValues {
    /// An empty column of `value_type`.
    pub fn new(value_type: ValueType) -> ColumnValues {
        match value_type {
            ValueType::F64 => ColumnValues::F64(Vec::new()),
            ValueType::I64 => ColumnValues::I64(Vec::new()),
            ValueType::Bool => ColumnValues::Bool(Vec::new()),
            ValueType::Str => ColumnValues::Str(Vec::new()),
            ValueType::Bytes => ColumnValues::Bytes(Vec::new()),
        }
    }

    /// The column's type.
    pub fn value_type(&self) -> ValueType {
        match self {
            ColumnValues::F64(_) => ValueType::F64,
            ColumnValues::I64(_) => ValueType::I64,
            ColumnValues::Bool(_) => ValueType::Bool,
            ColumnValues::Str(_) => ValueType::Str,
            ColumnValues::Bytes(_) => ValueType::Bytes,
        }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        match self {
            ColumnValues::F64(v) => v.len(),
            ColumnValues::I64(v) => v.len(),
            ColumnValues::Bool(v) => v.len(),
            ColumnValues::Str(v) => v.len(),
            ColumnValues::Bytes(v) => v.len(),
        }
    }

    /// Bytes the slots' vector has allocated (capacity), not counting what strings and
    /// byte strings hold elsewhere.
    pub(crate) fn capacity_bytes(&self) -> usize {
        match self {
            ColumnValues::F64(v) => v.capacity() * 8,
            ColumnValues::I64(v) => v.capacity() * 8,
            ColumnValues::Bool(v) => v.capacity(),
            ColumnValues::Str(v) => v.capacity() * std::mem::size_of::<String>(),
            ColumnValues::Bytes(v) => v.capacity() * std::mem::size_of::<Vec<u8>>(),
        }
    }

    /// Makes room for `more` slots beyond the length, exactly.
    pub(crate) fn reserve_exact(&mut self, more: usize) {
        match self {
            ColumnValues::F64(v) => v.reserve_exact(more),
            ColumnValues::I64(v) => v.reserve_exact(more),
            ColumnValues::Bool(v) => v.reserve_exact(more),
            ColumnValues::Str(v) => v.reserve_exact(more),
            ColumnValues::Bytes(v) => v.reserve_exact(more),
        }
    }

    /// Removes every slot, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        match self {
            ColumnValues::F64(v) => v.clear(),
            ColumnValues::I64(v) => v.clear(),
            ColumnValues::Bool(v) => v.clear(),
            ColumnValues::Str(v) => v.clear(),
            ColumnValues::Bytes(v) => v.clear(),
        }
    }

    /// Appends every slot of `other` (same type).
    pub(crate) fn extend_from(&mut self, other: &ColumnValues) {
        match (self, other) {
            (ColumnValues::F64(v), ColumnValues::F64(o)) => v.extend_from_slice(o),
            (ColumnValues::I64(v), ColumnValues::I64(o)) => v.extend_from_slice(o),
            (ColumnValues::Bool(v), ColumnValues::Bool(o)) => v.extend_from_slice(o),
            (ColumnValues::Str(v), ColumnValues::Str(o)) => v.extend_from_slice(o),
            (ColumnValues::Bytes(v), ColumnValues::Bytes(o)) => v.extend_from_slice(o),
            _ => debug_assert!(false, "column types differ"),
        }
    }

    /// True when there are no slots.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value in slot `i`.
    pub fn get(&self, i: usize) -> Option<FieldValue> {
        Some(match self {
            ColumnValues::F64(v) => FieldValue::F64(*v.get(i)?),
            ColumnValues::I64(v) => FieldValue::I64(*v.get(i)?),
            ColumnValues::Bool(v) => FieldValue::Bool(*v.get(i)?),
            ColumnValues::Str(v) => FieldValue::Str(v.get(i)?.clone()),
            ColumnValues::Bytes(v) => FieldValue::Bytes(v.get(i)?.clone()),
        })
    }

    /// Appends a value; a value of another type is a programming error and is ignored in
    /// release builds.
    // Called per value on the write path; without the hint it stops being inlined.
    #[inline(always)]
    pub(crate) fn push(&mut self, value: &FieldValue) {
        match (self, value) {
            (ColumnValues::F64(v), FieldValue::F64(x)) => v.push(*x),
            (ColumnValues::I64(v), FieldValue::I64(x)) => v.push(*x),
            (ColumnValues::Bool(v), FieldValue::Bool(x)) => v.push(*x),
            (ColumnValues::Str(v), FieldValue::Str(x)) => v.push(x.clone()),
            (ColumnValues::Bytes(v), FieldValue::Bytes(x)) => v.push(x.clone()),
            _ => debug_assert!(false, "value type does not match column type"),
        }
    }

    /// Appends the default value (an absent slot).
    #[inline]
    pub(crate) fn push_default(&mut self) {
        match self {
            ColumnValues::F64(v) => v.push(0.0),
            ColumnValues::I64(v) => v.push(0),
            ColumnValues::Bool(v) => v.push(false),
            ColumnValues::Str(v) => v.push(String::new()),
            ColumnValues::Bytes(v) => v.push(Vec::new()),
        }
    }

    /// Appends slot `i` of `other` (same type).
    #[inline]
    pub(crate) fn push_from(&mut self, other: &ColumnValues, i: usize) {
        match (self, other) {
            (ColumnValues::F64(v), ColumnValues::F64(o)) => v.push(o[i]),
            (ColumnValues::I64(v), ColumnValues::I64(o)) => v.push(o[i]),
            (ColumnValues::Bool(v), ColumnValues::Bool(o)) => v.push(o[i]),
            (ColumnValues::Str(v), ColumnValues::Str(o)) => v.push(o[i].clone()),
            (ColumnValues::Bytes(v), ColumnValues::Bytes(o)) => v.push(o[i].clone()),
            _ => debug_assert!(false, "column types differ"),
        }
    }

    /// A column of the slots at `indices`.
    pub(crate) fn gather(&self, indices: &[usize]) -> ColumnValues {
        match self {
            ColumnValues::F64(v) => ColumnValues::F64(indices.iter().map(|&i| v[i]).collect()),
            ColumnValues::I64(v) => ColumnValues::I64(indices.iter().map(|&i| v[i]).collect()),
            ColumnValues::Bool(v) => ColumnValues::Bool(indices.iter().map(|&i| v[i]).collect()),
            ColumnValues::Str(v) => ColumnValues::Str(indices.iter().map(|&i| v[i].clone()).collect()),
            ColumnValues::Bytes(v) => ColumnValues::Bytes(indices.iter().map(|&i| v[i].clone()).collect()),
        }
    }

    /// The slots of `range`, copied as one run.
    pub(crate) fn slice(&self, range: std::ops::Range<usize>) -> ColumnValues {
        match self {
            ColumnValues::F64(v) => ColumnValues::F64(v[range].to_vec()),
            ColumnValues::I64(v) => ColumnValues::I64(v[range].to_vec()),
            ColumnValues::Bool(v) => ColumnValues::Bool(v[range].to_vec()),
            ColumnValues::Str(v) => ColumnValues::Str(v[range].to_vec()),
            ColumnValues::Bytes(v) => ColumnValues::Bytes(v[range].to_vec()),
        }
    }

    /// Reverses the slots.
    pub(crate) fn reverse(&mut self) {
        match self {
            ColumnValues::F64(v) => v.reverse(),
            ColumnValues::I64(v) => v.reverse(),
            ColumnValues::Bool(v) => v.reverse(),
            ColumnValues::Str(v) => v.reverse(),
            ColumnValues::Bytes(v) => v.reverse(),
        }
    }
}

/// One column of a [`Chunk`].
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    /// Field name.
    pub name: Arc<str>,
    /// One slot per row of the chunk.
    pub values: ColumnValues,
    /// `validity[i]` is false where row `i` has no value for this field. Empty when every
    /// row has a value.
    pub validity: Vec<bool>,
}

impl Column {
    /// The column's type.
    pub fn value_type(&self) -> ValueType {
        self.values.value_type()
    }

    /// True when row `i` has a value.
    pub fn is_valid(&self, i: usize) -> bool {
        self.validity.get(i).copied().unwrap_or(self.validity.is_empty())
    }

    /// The value of row `i`, if present.
    pub fn value(&self, i: usize) -> Option<FieldValue> {
        if self.is_valid(i) { self.values.get(i) } else { None }
    }

    /// Number of rows that have a value.
    pub fn present_count(&self) -> usize {
        if self.validity.is_empty() {
            self.values.len()
        } else {
            self.validity.iter().filter(|&&v| v).count()
        }
    }
}

/// Rows of one series in time order: timestamps, record ids (event kinds only) and one
/// column per (field name, type) present in the rows.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Chunk {
    /// The series.
    pub series: SeriesId,
    /// Nanosecond timestamps, one per row.
    pub timestamps: Vec<i64>,
    /// Stable record ids, one per row, for event kinds (logs, alerts, performance
    /// samples); empty for metrics.
    pub record_ids: Vec<u64>,
    /// Columns, sorted by (name, type).
    pub columns: Vec<Column>,
}

impl Chunk {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    /// True when the chunk has no rows.
    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Number of present values over all columns.
    pub fn point_count(&self) -> usize {
        self.columns.iter().map(Column::present_count).sum()
    }

    /// A chunk of rows `range` of this one; columns without a value there are dropped.
    pub(crate) fn slice_rows(&self, range: std::ops::Range<usize>) -> Chunk {
        let columns = self
            .columns
            .iter()
            .filter_map(|c| {
                let validity: Vec<bool> = if c.validity.is_empty() {
                    Vec::new()
                } else {
                    c.validity[range.clone()].to_vec()
                };
                if !validity.is_empty() && !validity.iter().any(|&v| v) {
                    return None;
                }
                let all_valid = validity.iter().all(|&v| v);
                Some(Column {
                    name: c.name.clone(),
                    values: c.values.slice(range.clone()),
                    validity: if all_valid { Vec::new() } else { validity },
                })
            })
            .collect();
        Chunk {
            series: self.series,
            timestamps: self.timestamps[range.clone()].to_vec(),
            record_ids: if self.record_ids.is_empty() {
                Vec::new()
            } else {
                self.record_ids[range].to_vec()
            },
            columns,
        }
    }

    /// Appends `other`'s rows (same series and kind, all later in time) after this
    /// chunk's, padding columns either side lacks with absent slots.
    pub(crate) fn append(&mut self, other: &Chunk) {
        let before = self.len();
        let added = other.len();
        if added == 0 {
            return;
        }
        self.timestamps.extend_from_slice(&other.timestamps);
        self.record_ids.extend_from_slice(&other.record_ids);
        let mut touched = vec![false; self.columns.len()];
        for theirs in &other.columns {
            let at = self
                .columns
                .iter()
                .position(|c| c.name == theirs.name && c.value_type() == theirs.value_type());
            let at = match at {
                Some(at) => at,
                None => {
                    let mut values = ColumnValues::new(theirs.value_type());
                    for _ in 0..before {
                        values.push_default();
                    }
                    self.columns.push(Column {
                        name: theirs.name.clone(),
                        values,
                        validity: vec![false; before],
                    });
                    touched.push(false);
                    self.columns.len() - 1
                }
            };
            touched[at] = true;
            let ours = &mut self.columns[at];
            if !ours.validity.is_empty() || !theirs.validity.is_empty() {
                if ours.validity.is_empty() {
                    ours.validity = vec![true; before];
                }
                if theirs.validity.is_empty() {
                    ours.validity.resize(before + added, true);
                } else {
                    ours.validity.extend_from_slice(&theirs.validity);
                }
            }
            for i in 0..added {
                ours.values.push_from(&theirs.values, i);
            }
        }
        for (column, touched) in self.columns.iter_mut().zip(touched) {
            if touched {
                continue;
            }
            if column.validity.is_empty() {
                column.validity = vec![true; before];
            }
            column.validity.resize(before + added, false);
            for _ in 0..added {
                column.values.push_default();
            }
        }
        self.columns
            .sort_by(|a, b| (&a.name, a.value_type()).cmp(&(&b.name, b.value_type())));
    }

    /// Drops rows where no column has a value.
    pub(crate) fn retain_rows_with_values(self) -> Chunk {
        if self.columns.iter().any(|c| c.validity.is_empty()) {
            return self;
        }
        let keep: Vec<usize> = (0..self.len()).filter(|&i| self.columns.iter().any(|c| c.validity[i])).collect();
        if keep.len() == self.len() {
            return self;
        }
        let columns = self
            .columns
            .iter()
            .map(|c| {
                let validity: Vec<bool> = keep.iter().map(|&i| c.validity[i]).collect();
                Column {
                    name: c.name.clone(),
                    values: c.values.gather(&keep),
                    validity: if validity.iter().all(|&v| v) { Vec::new() } else { validity },
                }
            })
            .filter(|c| c.validity.is_empty() || c.validity.iter().any(|&v| v))
            .collect();
        Chunk {
            series: self.series,
            timestamps: keep.iter().map(|&i| self.timestamps[i]).collect(),
            record_ids: if self.record_ids.is_empty() {
                Vec::new()
            } else {
                keep.iter().map(|&i| self.record_ids[i]).collect()
            },
            columns,
        }
    }

    /// Reverses the row order.
    pub(crate) fn reverse(&mut self) {
        self.timestamps.reverse();
        self.record_ids.reverse();
        for c in &mut self.columns {
            c.values.reverse();
            c.validity.reverse();
        }
    }

    /// The fields of row `i` as (name, value) pairs.
    pub fn row(&self, i: usize) -> Vec<(Arc<str>, FieldValue)> {
        self.columns
            .iter()
            .filter_map(|c| c.value(i).map(|v| (c.name.clone(), v)))
            .collect()
    }
}

/// How rows of one series that share a timestamp combine when they are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Duplicates {
    /// Every row stays, ordered by version (event kinds, whose version is the record id).
    KeepAll,
    /// One row per timestamp, in which each field holds the value of the newest version
    /// that carries that field (metrics: a write updates only the fields it carries).
    MergeFields,
    /// One row per timestamp: the newest version's row, whole (summary rows, where a later
    /// run of a bucket replaces the earlier one).
    ReplaceRow,
}

impl Duplicates {
    /// The rule of a series kind: event rows are all kept, metric rows merge field by field.
    pub(crate) fn of(kind: SeriesKind) -> Duplicates {
        if kind.is_event() {
            Duplicates::KeepAll
        } else {
            Duplicates::MergeFields
        }
    }
}

/// One input row of a merge: (timestamp, version, part, row within the part).
type MergeEntry = (i64, u64, u32, u32);

/// Merges parts of one series, each with a version per row (higher is newer), into one
/// chunk sorted by (timestamp, version) whose `record_ids` are the surviving versions; a
/// row merged from several versions carries the newest. Rows that share a timestamp
/// combine by `rule`.
///
/// Versions of different parts must not interleave for one timestamp's rows to merge
/// right: a part's rows are all older, or all newer, than another part's (heads are newer
/// than segments, and the segments of a month are ordered by their sequence numbers).
pub(crate) fn merge_versions(series: SeriesId, rule: Duplicates, parts: Vec<(Chunk, Vec<u64>)>) -> Chunk {
    let mut entries: Vec<MergeEntry> = Vec::with_capacity(parts.iter().map(|(c, _)| c.len()).sum());
    for (p, (chunk, versions)) in parts.iter().enumerate() {
        for (r, (&ts, &v)) in chunk.timestamps.iter().zip(versions).enumerate() {
            entries.push((ts, v, p as u32, r as u32));
        }
    }
    entries.sort_unstable_by_key(|&(ts, v, _, _)| (ts, v));
    let has_duplicates = rule != Duplicates::KeepAll && entries.windows(2).any(|w| w[0].0 == w[1].0);
    // Output row i is the run entries[run_ends[i - 1]..run_ends[i]] (the first from 0); the
    // run's last entry is its newest version. Without duplicates every entry is its own row.
    let mut run_ends: Option<Vec<usize>> = None;
    if has_duplicates {
        match rule {
            Duplicates::KeepAll => {}
            Duplicates::ReplaceRow => {
                let mut out = 0;
                for i in 0..entries.len() {
                    if i + 1 == entries.len() || entries[i + 1].0 != entries[i].0 {
                        entries[out] = entries[i];
                        out += 1;
                    }
                }
                entries.truncate(out);
            }
            Duplicates::MergeFields => {
                run_ends = Some(
                    (0..entries.len())
                        .filter(|&i| i + 1 == entries.len() || entries[i + 1].0 != entries[i].0)
                        .map(|i| i + 1)
                        .collect(),
                );
            }
        }
    }
    let mut keys: Vec<(Arc<str>, ValueType)> = parts
        .iter()
        .flat_map(|(c, _)| c.columns.iter().map(|col| (col.name.clone(), col.value_type())))
        .collect();
    keys.sort();
    keys.dedup();
    let rows = run_ends.as_ref().map_or(entries.len(), Vec::len);
    let mut columns = Vec::with_capacity(keys.len());
    for (name, value_type) in keys {
        // Per part: the column of this name and type, and every column of this name.
        let exact: Vec<Option<&Column>> = parts
            .iter()
            .map(|(c, _)| c.columns.iter().find(|col| col.name == name && col.value_type() == value_type))
            .collect();
        let mut values = ColumnValues::new(value_type);
        let mut validity = Vec::with_capacity(rows);
        let mut push = |source: Option<(&Column, usize)>| match source {
            Some((col, r)) => {
                values.push_from(&col.values, r);
                validity.push(true);
            }
            None => {
                values.push_default();
                validity.push(false);
            }
        };
        match &run_ends {
            None => {
                for &(_, _, p, r) in &entries {
                    push(
                        exact[p as usize]
                            .filter(|col| col.is_valid(r as usize))
                            .map(|col| (col, r as usize)),
                    );
                }
            }
            Some(ends) => {
                let named: Vec<Vec<&Column>> = parts
                    .iter()
                    .map(|(c, _)| c.columns.iter().filter(|col| col.name == name).collect())
                    .collect();
                let mut start = 0;
                for &end in ends {
                    // The newest version that carries the field (in any type) decides it; a
                    // row holds a field name once, so its value is in at most one column.
                    let newest = entries[start..end]
                        .iter()
                        .rev()
                        .find(|&&(_, _, p, r)| named[p as usize].iter().any(|col| col.is_valid(r as usize)));
                    push(newest.and_then(|&(_, _, p, r)| {
                        exact[p as usize]
                            .filter(|col| col.is_valid(r as usize))
                            .map(|col| (col, r as usize))
                    }));
                    start = end;
                }
            }
        }
        if !validity.iter().any(|&v| v) {
            continue;
        }
        if validity.iter().all(|&v| v) {
            validity.clear();
        }
        columns.push(Column { name, values, validity });
    }
    // Versions stay attached (record ids for events, write order for metrics) so that a
    // merged chunk can be merged again; the read path strips them from metric output.
    let (timestamps, record_ids) = match &run_ends {
        None => (entries.iter().map(|e| e.0).collect(), entries.iter().map(|e| e.1).collect()),
        Some(ends) => (
            ends.iter().map(|&end| entries[end - 1].0).collect(),
            ends.iter().map(|&end| entries[end - 1].1).collect(),
        ),
    };
    Chunk {
        series,
        timestamps,
        record_ids,
        columns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, values: Vec<f64>, validity: Vec<bool>) -> Column {
        Column {
            name: Arc::from(name),
            values: ColumnValues::F64(values),
            validity,
        }
    }

    #[test]
    fn append_pads_columns_missing_on_either_side() {
        let mut a = Chunk {
            series: 1,
            timestamps: vec![1, 2],
            record_ids: Vec::new(),
            columns: vec![column("x", vec![1.0, 2.0], Vec::new())],
        };
        let b = Chunk {
            series: 1,
            timestamps: vec![3],
            record_ids: Vec::new(),
            columns: vec![column("w", vec![9.0], Vec::new())],
        };
        a.append(&b);
        assert_eq!(a.timestamps, vec![1, 2, 3]);
        assert_eq!(a.columns.len(), 2);
        assert_eq!(&*a.columns[0].name, "w");
        assert_eq!(
            (0..3).map(|i| a.columns[0].value(i)).collect::<Vec<_>>(),
            vec![None, None, Some(FieldValue::F64(9.0))]
        );
        assert_eq!(
            (0..3).map(|i| a.columns[1].value(i)).collect::<Vec<_>>(),
            vec![Some(FieldValue::F64(1.0)), Some(FieldValue::F64(2.0)), None]
        );
        assert_eq!(a.point_count(), 3);
        let tail = a.slice_rows(2..3);
        assert_eq!(tail.columns.len(), 1, "a slice drops columns without values");
    }

    /// A chunk from rows of (timestamp, fields); fields absent from a row are invalid.
    fn rows(rows: &[(i64, Vec<(&str, FieldValue)>)]) -> Chunk {
        let mut chunk = Chunk::default();
        for (ts, fields) in rows {
            let mut row = Chunk {
                series: 1,
                timestamps: vec![*ts],
                record_ids: Vec::new(),
                columns: Vec::new(),
            };
            for (name, value) in fields {
                let mut values = ColumnValues::new(value.value_type());
                values.push(value);
                row.columns.push(Column {
                    name: Arc::from(*name),
                    values,
                    validity: Vec::new(),
                });
            }
            row.columns
                .sort_by(|a, b| (&a.name, a.value_type()).cmp(&(&b.name, b.value_type())));
            chunk.append(&row);
        }
        chunk
    }

    fn fields_of(chunk: &Chunk) -> Vec<(i64, Vec<(String, FieldValue)>)> {
        (0..chunk.len())
            .map(|i| {
                (
                    chunk.timestamps[i],
                    chunk.row(i).into_iter().map(|(n, v)| (n.to_string(), v)).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn metric_writes_of_one_timestamp_merge_field_by_field() {
        let older = rows(&[(10, vec![("a", 1.0.into()), ("b", 2.0.into())]), (20, vec![("a", 3.0.into())])]);
        let newer = rows(&[(10, vec![("b", 9.0.into()), ("c", 7i64.into())]), (30, vec![("a", 4.0.into())])]);
        let merged = merge_versions(
            1,
            Duplicates::MergeFields,
            vec![(newer.clone(), vec![8, 8]), (older.clone(), vec![5, 5])],
        );
        assert_eq!(
            fields_of(&merged),
            vec![
                (
                    10,
                    vec![("a".into(), 1.0.into()), ("b".into(), 9.0.into()), ("c".into(), 7i64.into())]
                ),
                (20, vec![("a".into(), 3.0.into())]),
                (30, vec![("a".into(), 4.0.into())]),
            ]
        );
        assert_eq!(merged.record_ids, vec![8, 5, 8], "a merged row carries its newest version");
        let replaced = merge_versions(
            1,
            Duplicates::ReplaceRow,
            vec![(newer.clone(), vec![8, 8]), (older.clone(), vec![5, 5])],
        );
        assert_eq!(
            fields_of(&replaced)[0],
            (10, vec![("b".into(), 9.0.into()), ("c".into(), 7i64.into())]),
            "summary rows are replaced whole"
        );
        let kept = merge_versions(1, Duplicates::KeepAll, vec![(newer, vec![8, 9]), (older, vec![5, 6])]);
        assert_eq!(kept.timestamps, vec![10, 10, 20, 30]);
        assert_eq!(kept.record_ids, vec![5, 8, 6, 9]);
    }

    #[test]
    fn a_newer_value_of_another_type_replaces_the_field() {
        let older = rows(&[(10, vec![("a", 1.0.into()), ("b", true.into())])]);
        let newer = rows(&[(10, vec![("a", "text".into())])]);
        let merged = merge_versions(1, Duplicates::MergeFields, vec![(older, vec![1]), (newer, vec![2])]);
        assert_eq!(
            fields_of(&merged),
            vec![(10, vec![("a".into(), "text".into()), ("b".into(), true.into())])]
        );
        assert_eq!(merged.columns.len(), 2, "the float column of `a` has no value left and is dropped");
    }
}
