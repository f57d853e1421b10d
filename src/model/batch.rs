//! [`Batch`]: the unit of writing. One batch is one WAL record and becomes visible at once.

use super::{FieldValue, SeriesKey};
use crate::error::{Error, Result};
use rustc_hash::FxHashMap;

/// Rows to write together: one WAL record, durable and visible as a whole or not at all.
///
/// A batch interns its series keys and field names, so a key repeated on many rows is
/// stored and resolved once.
///
/// ```
/// use annals::{Batch, FieldValue, SeriesKey};
/// let cpu = SeriesKey::metric("cpu").unwrap().with_tag("host", "a").unwrap();
/// let mut batch = Batch::new();
/// batch.add_row(&cpu, 1_000, [("usage_user", FieldValue::F64(12.5)), ("usage_idle", 80.0.into())]).unwrap();
/// batch.add_row(&cpu, 2_000, [("usage_user", FieldValue::F64(13.0))]).unwrap();
/// assert_eq!((batch.len(), batch.point_count()), (2, 3));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Batch {
    pub(crate) series: Vec<SeriesKey>,
    series_index: FxHashMap<SeriesKey, u32>,
    pub(crate) field_names: Vec<String>,
    field_index: FxHashMap<String, u32>,
    pub(crate) rows: Vec<BatchRow>,
    pub(crate) values: Vec<(u32, FieldValue)>,
    /// Sum of string lengths in keys, names and values: the bulk of the encoded size.
    text_bytes: usize,
    scratch: Vec<u32>,
}

/// A position in a batch, from [`Batch::mark`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMark {
    series: usize,
    field_names: usize,
    rows: usize,
    values: usize,
    text_bytes: usize,
}

/// One row of a batch; its values are `values[first_value .. first_value + value_count]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchRow {
    pub series: u32,
    pub timestamp: i64,
    pub first_value: u32,
    pub value_count: u32,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Batch {
        Batch::default()
    }

    /// Adds a row of `fields` to the series `key` at `timestamp` (nanoseconds).
    ///
    /// A row needs at least one field, and a field name may appear once per row.
    pub fn add_row<N, I>(&mut self, key: &SeriesKey, timestamp: i64, fields: I) -> Result<()>
    where
        N: AsRef<str>,
        I: IntoIterator<Item = (N, FieldValue)>,
    {
        let first_value = self.values.len();
        for (name, value) in fields {
            let field = self.intern_field(name.as_ref());
            match &value {
                FieldValue::Str(s) => self.text_bytes += s.len(),
                FieldValue::Bytes(b) => self.text_bytes += b.len(),
                _ => {}
            }
            self.values.push((field, value));
        }
        if let Err(e) = check_row_fields(&self.values[first_value..], &self.field_names, &mut self.scratch) {
            self.values.truncate(first_value);
            return Err(e);
        }
        let series = self.intern_series(key);
        self.rows.push(BatchRow {
            series,
            timestamp,
            first_value: first_value as u32,
            value_count: (self.values.len() - first_value) as u32,
        });
        Ok(())
    }

    fn intern_field(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.field_index.get(name) {
            return id;
        }
        let id = self.field_names.len() as u32;
        self.text_bytes += name.len();
        self.field_names.push(name.to_owned());
        self.field_index.insert(name.to_owned(), id);
        id
    }

    fn intern_series(&mut self, key: &SeriesKey) -> u32 {
        if let Some(&id) = self.series_index.get(key) {
            return id;
        }
        let id = self.series.len() as u32;
        self.text_bytes += key.heap_bytes();
        self.series.push(key.clone());
        self.series_index.insert(key.clone(), id);
        id
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the batch holds no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Number of field values (points) over all rows.
    pub fn point_count(&self) -> usize {
        self.values.len()
    }

    /// Number of distinct series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// A close upper estimate of the batch's encoded size in bytes.
    pub fn estimated_bytes(&self) -> usize {
        self.text_bytes + self.rows.len() * 16 + self.values.len() * 10 + self.series.len() * 8 + 64
    }

    /// Empties the batch, keeping its allocations.
    pub fn clear(&mut self) {
        self.series.clear();
        self.series_index.clear();
        self.field_names.clear();
        self.field_index.clear();
        self.rows.clear();
        self.values.clear();
        self.text_bytes = 0;
    }

    /// A point to roll back to with [`Batch::rollback`].
    pub fn mark(&self) -> BatchMark {
        BatchMark {
            series: self.series.len(),
            field_names: self.field_names.len(),
            rows: self.rows.len(),
            values: self.values.len(),
            text_bytes: self.text_bytes,
        }
    }

    /// Removes everything added after `mark`, so an input line that fails halfway leaves
    /// nothing behind.
    pub fn rollback(&mut self, mark: BatchMark) {
        for key in self.series.drain(mark.series.min(self.series.len())..) {
            self.series_index.remove(&key);
        }
        for name in self.field_names.drain(mark.field_names.min(self.field_names.len())..) {
            self.field_index.remove(&name);
        }
        self.rows.truncate(mark.rows);
        self.values.truncate(mark.values);
        self.text_bytes = mark.text_bytes;
    }

    /// Moves every row of `other` to the end of this batch, in order (rows parsed apart, on
    /// several threads, become one write).
    pub fn append(&mut self, other: Batch) {
        let series: Vec<u32> = other.series.iter().map(|key| self.intern_series(key)).collect();
        let fields: Vec<u32> = other.field_names.iter().map(|name| self.intern_field(name)).collect();
        let value_base = self.values.len() as u32;
        self.rows.extend(other.rows.iter().map(|row| BatchRow {
            series: series[row.series as usize],
            first_value: row.first_value + value_base,
            ..*row
        }));
        for (field, value) in other.values {
            match &value {
                FieldValue::Str(s) => self.text_bytes += s.len(),
                FieldValue::Bytes(b) => self.text_bytes += b.len(),
                _ => {}
            }
            self.values.push((fields[field as usize], value));
        }
    }

    /// Iterates over rows as (series key, timestamp, fields).
    pub fn rows(&self) -> impl Iterator<Item = (&SeriesKey, i64, impl Iterator<Item = (&str, &FieldValue)>)> {
        self.rows.iter().map(move |row| {
            let values = &self.values[row.first_value as usize..(row.first_value + row.value_count) as usize];
            (
                &self.series[row.series as usize],
                row.timestamp,
                values.iter().map(move |(f, v)| (self.field_names[*f as usize].as_str(), v)),
            )
        })
    }
}

/// A row needs at least one field, and each field name once.
fn check_row_fields(row: &[(u32, FieldValue)], field_names: &[String], scratch: &mut Vec<u32>) -> Result<()> {
    if row.is_empty() {
        return Err(Error::invalid("a row needs at least one field"));
    }
    if row.len() > 1 {
        scratch.clear();
        scratch.extend(row.iter().map(|(f, _)| *f));
        scratch.sort_unstable();
        if let Some(w) = scratch.windows(2).find(|w| w[0] == w[1]) {
            let name = field_names.get(w[0] as usize).map_or("?", String::as_str);
            return Err(Error::invalid(format!("field {name:?} given twice in one row")));
        }
    }
    Ok(())
}
