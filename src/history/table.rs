//! Records of one kind as columns: [`History::query_table`] reads a query's rows straight
//! into them, without building a [`Record`] per row, and [`RecordTable::from_records`]
//! lays out records already read. The layout is Arrow's (values, validity, UTF-8 bytes
//! with 32-bit offsets), so a front end hands the columns to Arrow consumers as they are
//! (the Python package does, without copying them).
//!
//! The columns of a kind are its data class's fields in their order (always present, all
//! null when no record set them), then `tags.<key>` for each tag and `metadata.<key>` or
//! `extra_data.<key>` for each extra value, in the order they are first seen.

use super::{DataQuery, DataType, History, Record, kinds_selector, records_from};
use crate::error::Result;
use crate::model::kinds::{LOG_MEASUREMENT, PERFORMANCE_MEASUREMENT};
use crate::model::{FieldValue, LogLevel, Metadata, SeriesId, SeriesKey};
use crate::query::Query;
use crate::read::Order;
use crate::time::TimeRange;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The values of one column of a [`RecordTable`]. A null row holds a placeholder (0,
/// false, an empty string) so that row `i` is always at index `i`.
#[derive(Debug, Clone, PartialEq)]
pub enum TableValues {
    /// Nanoseconds since the Unix epoch, UTC.
    Timestamp(Vec<i64>),
    /// Floats.
    F64(Vec<f64>),
    /// Integers.
    I64(Vec<i64>),
    /// Booleans.
    Bool(Vec<bool>),
    /// UTF-8 text: row `i` is `data[offsets[i]..offsets[i + 1]]` (`offsets` starts at 0).
    Utf8 {
        /// The bytes of every row, one after the other.
        data: Vec<u8>,
        /// Where each row starts, and where the last ends.
        offsets: Vec<i32>,
    },
    /// Bytes, laid out as [`TableValues::Utf8`].
    Binary {
        /// The bytes of every row, one after the other.
        data: Vec<u8>,
        /// Where each row starts, and where the last ends.
        offsets: Vec<i32>,
    },
}

/// One column of a [`RecordTable`].
#[derive(Debug, Clone, PartialEq)]
pub struct TableColumn {
    /// The data class field (`value`, `message`), `tags.<key>`, `metadata.<key>` or
    /// `extra_data.<key>`.
    pub name: String,
    /// The values, one per row.
    pub values: TableValues,
    /// Whether row `i` has a value (false: null).
    pub valid: Vec<bool>,
}

impl TableColumn {
    /// Row `i` as text, when the column is text and the row not null.
    pub fn text(&self, i: usize) -> Option<&str> {
        match &self.values {
            TableValues::Utf8 { data, offsets } if *self.valid.get(i)? => {
                std::str::from_utf8(&data[offsets[i] as usize..offsets[i + 1] as usize]).ok()
            }
            _ => None,
        }
    }
}

/// Records of one kind as columns.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordTable {
    /// The kind of every row.
    pub kind: DataType,
    /// Rows in every column.
    pub rows: usize,
    /// The columns (see the module documentation for their order).
    pub columns: Vec<TableColumn>,
}

impl RecordTable {
    /// One table per record kind of `records`, in the order the kinds first appear.
    pub fn from_records(records: &[Record]) -> Vec<RecordTable> {
        let mut builders: Vec<TableBuilder> = Vec::new();
        for record in records {
            let kind = record_kind(record);
            let at = match builders.iter().position(|b| b.kind == kind) {
                Some(i) => i,
                None => {
                    builders.push(TableBuilder::new(kind));
                    builders.len() - 1
                }
            };
            builders[at].push_record(record);
        }
        builders.into_iter().map(TableBuilder::finish).collect()
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&TableColumn> {
        self.columns.iter().find(|c| c.name == name)
    }
}

impl History {
    /// The records of `kind` that `request` selects (its time range, levels, components and
    /// search text, from its offset or cursor, in its order), at most `max_rows` of them
    /// (`None`: all), as one table. Unlike [`History::query_data`] there is no page size
    /// cap and no total count, and rows go straight into columns: a front end asks for a
    /// table of 10,000 records at once rather than for ten pages.
    pub fn query_table(&self, request: &DataQuery, kind: DataType, max_rows: Option<usize>) -> Result<RecordTable> {
        let mut builder = TableBuilder::new(kind);
        if max_rows == Some(0) {
            return Ok(builder.finish());
        }
        let Some(selector) = kinds_selector(request, &[kind]) else {
            return Ok(builder.finish());
        };
        let range = TimeRange::new(request.start_time.unwrap_or(i64::MIN), request.end_time.unwrap_or(i64::MAX));
        if request.search_text.is_some() {
            // Text queries are answered by the text index, page by page as query_data does.
            let mut page_request = request.clone();
            page_request.data_types = vec![kind];
            page_request.limit = 1000;
            loop {
                let page = self.query_data(&page_request)?;
                for record in &page.rows {
                    builder.push_record(record);
                    if Some(builder.rows) == max_rows {
                        return Ok(builder.finish());
                    }
                }
                match page.next_cursor {
                    Some(cursor) if !page.rows.is_empty() => {
                        page_request.cursor = Some(cursor);
                        page_request.offset = 0;
                    }
                    _ => return Ok(builder.finish()),
                }
            }
        }
        let query = Query {
            selector,
            range,
            order: if request.order_desc { Order::Descending } else { Order::Ascending },
            limit: max_rows,
            offset: request.offset,
            cursor: request.cursor.clone(),
            ..Query::default()
        };
        let snapshot = self.engine.snapshot();
        let mut result = snapshot.query(&query)?;
        let value_columns = result.value_columns.clone();
        let roles: Vec<Role> = value_columns.iter().map(|name| Role::of(kind, name)).collect();
        // Per value column, the table column its extra values go to (found on first use).
        let mut extra_columns: Vec<Option<usize>> = vec![None; value_columns.len()];
        // Per series, the cells its key gives every row (None: not a record of `kind`).
        let mut series_cells: FxHashMap<SeriesId, Option<Vec<(usize, String)>>> = FxHashMap::default();
        for row in result.by_ref() {
            let row = row?;
            let (Some(id), Some(time)) = (row.series, row.time) else {
                continue;
            };
            let cells = match series_cells.entry(id) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    let cells = snapshot.series_key(id).and_then(|key| builder.series_cells(&key));
                    e.insert(cells)
                }
            };
            let Some(cells) = cells.as_ref() else { continue };
            if kind == DataType::Alerts {
                if let Some(key) = snapshot.series_key(id) {
                    let fields: Vec<(&str, FieldValue)> = value_columns
                        .iter()
                        .zip(&row.values)
                        .filter_map(|(c, v)| v.clone().map(|v| (c.as_str(), v)))
                        .collect();
                    for record in records_from(&key, time, &fields) {
                        builder.push_record(&record);
                    }
                }
            } else if kind == DataType::Metrics {
                // A metric row holds one value per metric name; each is a record.
                for (c, value) in row.values.iter().enumerate() {
                    let Some(value) = value.as_ref().and_then(FieldValue::as_f64) else {
                        continue;
                    };
                    builder.set_at(0, Cell::Time(time));
                    for (at, text) in cells {
                        builder.set_at(*at, Cell::Text(text));
                    }
                    builder.set_at(2, Cell::Text(&value_columns[c]));
                    builder.set_at(3, Cell::F64(value));
                    builder.end_row();
                    if Some(builder.rows) == max_rows {
                        return Ok(builder.finish());
                    }
                }
            } else {
                builder.set_at(0, Cell::Time(time));
                for (at, text) in cells {
                    builder.set_at(*at, Cell::Text(text));
                }
                for (c, value) in row.values.iter().enumerate() {
                    let Some(value) = value else { continue };
                    match roles[c] {
                        Role::Ignored => {}
                        Role::Float(at) => {
                            if let Some(x) = value.as_f64() {
                                builder.set_at(at, Cell::F64(x));
                            }
                        }
                        Role::Integer(at) => {
                            if let FieldValue::I64(x) = value {
                                builder.set_at(at, Cell::I64(*x));
                            }
                        }
                        Role::Text(at) => {
                            if let FieldValue::Str(s) = value {
                                builder.set_at(at, Cell::Text(s));
                            }
                        }
                        Role::Extra => {
                            let at = match extra_columns[c] {
                                Some(at) => Some(at),
                                None => {
                                    let at = builder.column_for(&value_columns[c], &Cell::Value(value));
                                    extra_columns[c] = at;
                                    at
                                }
                            };
                            if let Some(at) = at {
                                builder.set_at(at, Cell::Value(value));
                            }
                        }
                    }
                }
                // The data classes' defaults: no error count is 0, no message is "".
                match kind {
                    DataType::Performance => builder.set_at(6, Cell::I64(0)),
                    DataType::Logs => builder.set_at(3, Cell::Text("")),
                    _ => {}
                }
                builder.end_row();
                if Some(builder.rows) == max_rows {
                    return Ok(builder.finish());
                }
            }
        }
        Ok(builder.finish())
    }
}

/// What a value column of a performance or log row is to its table.
#[derive(Debug, Clone, Copy)]
enum Role {
    /// Not a field of the kind's data class.
    Ignored,
    /// A float field: the index of its fixed column.
    Float(usize),
    /// An integer field.
    Integer(usize),
    /// A text field.
    Text(usize),
    /// An extra value (`metadata.<key>`, `extra_data.<key>`): a column of its own name.
    Extra,
}

impl Role {
    fn of(kind: DataType, column: &str) -> Role {
        match (kind, column) {
            (DataType::Performance, "duration_ms") => Role::Float(3),
            (DataType::Performance, "throughput") => Role::Float(4),
            (DataType::Performance, "efficiency_percent") => Role::Float(5),
            (DataType::Performance, "error_count") => Role::Integer(6),
            (DataType::Performance, c) if c.starts_with("metadata.") => Role::Extra,
            (DataType::Logs, "message") => Role::Text(3),
            (DataType::Logs, "function_name") => Role::Text(5),
            (DataType::Logs, "line_number") => Role::Integer(6),
            (DataType::Logs, "thread_id") => Role::Integer(7),
            (DataType::Logs, "process_id") => Role::Integer(8),
            (DataType::Logs, c) if c.starts_with("extra_data.") => Role::Extra,
            _ => Role::Ignored,
        }
    }
}

fn record_kind(record: &Record) -> DataType {
    match record {
        Record::Metric(_) => DataType::Metrics,
        Record::Performance(_) => DataType::Performance,
        Record::Log(_) => DataType::Logs,
        Record::Alert(_) => DataType::Alerts,
    }
}

/// The data class fields of a record kind and their column types (`t` timestamp, `u`
/// text, `g` float, `l` integer): the columns a table of that kind always has.
fn fixed_columns(kind: DataType) -> &'static [(&'static str, char)] {
    match kind {
        DataType::Metrics => &[
            ("timestamp", 't'),
            ("metric_type", 'u'),
            ("metric_name", 'u'),
            ("value", 'g'),
            ("unit", 'u'),
        ],
        DataType::Performance => &[
            ("timestamp", 't'),
            ("component", 'u'),
            ("operation", 'u'),
            ("duration_ms", 'g'),
            ("throughput", 'g'),
            ("efficiency_percent", 'g'),
            ("error_count", 'l'),
        ],
        DataType::Logs => &[
            ("timestamp", 't'),
            ("level", 'u'),
            ("logger_name", 'u'),
            ("message", 'u'),
            ("module", 'u'),
            ("function_name", 'u'),
            ("line_number", 'l'),
            ("thread_id", 'l'),
            ("process_id", 'l'),
        ],
        DataType::Alerts => &[
            ("timestamp", 't'),
            ("alert_id", 'u'),
            ("state", 'u'),
            ("level", 'u'),
            ("category", 'u'),
            ("title", 'u'),
            ("description", 'u'),
            ("source_component", 'u'),
        ],
    }
}

/// A value of one cell.
enum Cell<'a> {
    Null,
    Time(i64),
    Value(&'a FieldValue),
    F64(f64),
    I64(i64),
    Text(&'a str),
}

/// Columns filled row by row; a column first seen at row `n` gets nulls for the rows
/// before it, and every column a row did not set gets a null when the row ends. The fixed
/// columns of the kind come first, so a fixed column's index is its place in
/// [`fixed_columns`] (what `query_table` and [`Role`] address them by).
struct TableBuilder {
    kind: DataType,
    rows: usize,
    columns: Vec<TableColumn>,
    index: FxHashMap<String, usize>,
}

impl TableBuilder {
    fn new(kind: DataType) -> TableBuilder {
        let mut builder = TableBuilder {
            kind,
            rows: 0,
            columns: Vec::new(),
            index: FxHashMap::default(),
        };
        for &(name, type_) in fixed_columns(kind) {
            let values = match type_ {
                't' => TableValues::Timestamp(Vec::new()),
                'g' => TableValues::F64(Vec::new()),
                'l' => TableValues::I64(Vec::new()),
                _ => TableValues::Utf8 {
                    data: Vec::new(),
                    offsets: vec![0],
                },
            };
            builder.index.insert(name.to_string(), builder.columns.len());
            builder.columns.push(TableColumn {
                name: name.to_string(),
                values,
                valid: Vec::new(),
            });
        }
        builder
    }

    /// The text cells a series key gives each of its rows of this table's kind, as (column,
    /// text); `None` when the series holds no records of the kind.
    fn series_cells(&mut self, key: &Arc<SeriesKey>) -> Option<Vec<(usize, String)>> {
        let (fixed, typed_tags): (Vec<(usize, String)>, &[&str]) = match self.kind {
            DataType::Metrics => {
                let mut fixed = vec![(1, key.measurement().to_string())];
                if let Some(unit) = key.tag("unit") {
                    fixed.push((4, unit.to_string()));
                }
                (fixed, &["unit"])
            }
            DataType::Performance if key.measurement() == PERFORMANCE_MEASUREMENT => (
                vec![
                    (1, key.tag("component").unwrap_or_default().to_string()),
                    (2, key.tag("operation").unwrap_or_default().to_string()),
                ],
                &["component", "operation"],
            ),
            DataType::Logs if key.measurement() == LOG_MEASUREMENT => {
                let level = LogLevel::parse(key.tag("level")?).ok()?;
                let mut fixed = vec![
                    (1, level.as_str().to_string()),
                    (2, key.tag("logger_name").unwrap_or_default().to_string()),
                ];
                if let Some(module) = key.tag("module") {
                    fixed.push((4, module.to_string()));
                }
                (fixed, &["level", "logger_name", "module"])
            }
            // Alert rows become records one by one (their cells depend on the row).
            DataType::Alerts => return Some(Vec::new()),
            _ => return None,
        };
        let mut cells = fixed;
        for (k, v) in key.tags() {
            if typed_tags.contains(&k.as_str()) {
                continue;
            }
            if let Some(at) = self.column_for(&format!("tags.{k}"), &Cell::Text(v)) {
                cells.push((at, v.clone()));
            }
        }
        Some(cells)
    }

    fn empty_like(cell: &Cell<'_>) -> Option<TableValues> {
        Some(match cell {
            Cell::Null => return None,
            Cell::Time(_) => TableValues::Timestamp(Vec::new()),
            Cell::F64(_) | Cell::Value(FieldValue::F64(_)) => TableValues::F64(Vec::new()),
            Cell::I64(_) | Cell::Value(FieldValue::I64(_)) => TableValues::I64(Vec::new()),
            Cell::Value(FieldValue::Bool(_)) => TableValues::Bool(Vec::new()),
            Cell::Text(_) | Cell::Value(FieldValue::Str(_)) => TableValues::Utf8 {
                data: Vec::new(),
                offsets: vec![0],
            },
            Cell::Value(FieldValue::Bytes(_)) => TableValues::Binary {
                data: Vec::new(),
                offsets: vec![0],
            },
        })
    }

    /// The column called `name`, made (of `like`'s type, null so far) when new; `None` for
    /// a new column and a null cell.
    fn column_for(&mut self, name: &str, like: &Cell<'_>) -> Option<usize> {
        if let Some(&at) = self.index.get(name) {
            return Some(at);
        }
        let values = Self::empty_like(like)?;
        let mut column = TableColumn {
            name: name.to_string(),
            values,
            valid: Vec::new(),
        };
        for _ in 0..self.rows {
            push_null(&mut column);
        }
        self.columns.push(column);
        self.index.insert(name.to_string(), self.columns.len() - 1);
        Some(self.columns.len() - 1)
    }

    /// Sets column `at` of the current row; a second value for one cell is ignored, and a
    /// value of another type than the column's is a null (showing it as text would lose
    /// its type).
    fn set_at(&mut self, at: usize, cell: Cell<'_>) {
        let column = &mut self.columns[at];
        if column.valid.len() > self.rows {
            return;
        }
        if !push(column, &cell) {
            push_null(column);
        }
    }

    fn set(&mut self, name: &str, cell: Cell<'_>) {
        if let Some(at) = self.column_for(name, &cell) {
            self.set_at(at, cell);
        }
    }

    fn end_row(&mut self) {
        self.rows += 1;
        for column in &mut self.columns {
            if column.valid.len() < self.rows {
                push_null(column);
            }
        }
    }

    fn push_record(&mut self, record: &Record) {
        match record {
            Record::Metric(m) => {
                self.set("timestamp", Cell::Time(m.timestamp));
                self.set("metric_type", Cell::Text(&m.metric_type));
                self.set("metric_name", Cell::Text(&m.metric_name));
                self.set("value", Cell::F64(m.value));
                self.set("unit", text_or_null(&m.unit));
                self.tags(&m.tags);
            }
            Record::Performance(p) => {
                self.set("timestamp", Cell::Time(p.timestamp));
                self.set("component", Cell::Text(&p.component));
                self.set("operation", Cell::Text(&p.operation));
                self.set("duration_ms", p.duration_ms.map_or(Cell::Null, Cell::F64));
                self.set("throughput", p.throughput.map_or(Cell::Null, Cell::F64));
                self.set("efficiency_percent", p.efficiency_percent.map_or(Cell::Null, Cell::F64));
                self.set("error_count", Cell::I64(p.error_count));
                self.tags(&p.tags);
                self.extra("metadata", &p.metadata);
            }
            Record::Log(l) => {
                self.set("timestamp", Cell::Time(l.timestamp));
                self.set("level", Cell::Text(l.level.as_str()));
                self.set("logger_name", Cell::Text(&l.logger_name));
                self.set("message", Cell::Text(&l.message));
                self.set("module", text_or_null(&l.module));
                self.set("function_name", text_or_null(&l.function_name));
                self.set("line_number", l.line_number.map_or(Cell::Null, Cell::I64));
                self.set("thread_id", l.thread_id.map_or(Cell::Null, Cell::I64));
                self.set("process_id", l.process_id.map_or(Cell::Null, Cell::I64));
                self.tags(&l.tags);
                self.extra("extra_data", &l.extra_data);
            }
            Record::Alert(a) => {
                self.set("timestamp", Cell::Time(a.timestamp));
                self.set("alert_id", Cell::Text(&a.alert_id));
                self.set("state", Cell::Text(a.state.as_str()));
                self.set("level", Cell::Text(a.level.as_str()));
                self.set("category", Cell::Text(&a.category));
                self.set("title", Cell::Text(&a.title));
                self.set("description", text_or_null(&a.description));
                self.set("source_component", text_or_null(&a.source_component));
                self.extra("metadata", &a.metadata);
            }
        }
        self.end_row();
    }

    fn tags(&mut self, tags: &BTreeMap<String, String>) {
        for (k, v) in tags {
            self.set(&format!("tags.{k}"), Cell::Text(v));
        }
    }

    fn extra(&mut self, prefix: &str, values: &Metadata) {
        for (k, v) in values {
            self.set(&format!("{prefix}.{k}"), Cell::Value(v));
        }
    }

    fn finish(self) -> RecordTable {
        RecordTable {
            kind: self.kind,
            rows: self.rows,
            columns: self.columns,
        }
    }
}

fn text_or_null(s: &Option<String>) -> Cell<'_> {
    s.as_deref().map_or(Cell::Null, Cell::Text)
}

fn push_null(column: &mut TableColumn) {
    column.valid.push(false);
    match &mut column.values {
        TableValues::Timestamp(v) | TableValues::I64(v) => v.push(0),
        TableValues::F64(v) => v.push(0.0),
        TableValues::Bool(v) => v.push(false),
        TableValues::Utf8 { data, offsets } | TableValues::Binary { data, offsets } => offsets.push(data.len() as i32),
    }
}

/// Appends `cell` when its type is the column's; false otherwise.
fn push(column: &mut TableColumn, cell: &Cell<'_>) -> bool {
    let ok = match (&mut column.values, cell) {
        (_, Cell::Null) => return false,
        (TableValues::Timestamp(v), Cell::Time(t)) => {
            v.push(*t);
            true
        }
        (TableValues::F64(v), Cell::F64(x) | Cell::Value(FieldValue::F64(x))) => {
            v.push(*x);
            true
        }
        (TableValues::I64(v), Cell::I64(x) | Cell::Value(FieldValue::I64(x))) => {
            v.push(*x);
            true
        }
        (TableValues::Bool(v), Cell::Value(FieldValue::Bool(x))) => {
            v.push(*x);
            true
        }
        (TableValues::Utf8 { data, offsets }, Cell::Text(s)) => push_bytes(data, offsets, s.as_bytes()),
        (TableValues::Utf8 { data, offsets }, Cell::Value(FieldValue::Str(s))) => push_bytes(data, offsets, s.as_bytes()),
        (TableValues::Binary { data, offsets }, Cell::Value(FieldValue::Bytes(b))) => push_bytes(data, offsets, b),
        _ => false,
    };
    if ok {
        column.valid.push(true);
    }
    ok
}

/// Appends variable-length bytes; false past the 2 GiB of 32-bit offsets.
fn push_bytes(data: &mut Vec<u8>, offsets: &mut Vec<i32>, bytes: &[u8]) -> bool {
    let Ok(end) = i32::try_from(data.len() + bytes.len()) else {
        return false;
    };
    data.extend_from_slice(bytes);
    offsets.push(end);
    true
}
