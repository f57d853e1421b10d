//! Query pages as Arrow record batches over the Arrow C Data Interface and its PyCapsule
//! protocol (`__arrow_c_schema__`, `__arrow_c_array__`), so `pyarrow.record_batch(obj)`,
//! polars and DuckDB import the columns without copying them and without annals depending
//! on any Arrow crate. The buffers are built once from the page's records, 8-byte aligned,
//! and owned by an `Arc` the consumer releases.
//!
//! Specification: <https://arrow.apache.org/docs/format/CDataInterface.html> and
//! <https://arrow.apache.org/docs/format/CDataInterface/PyCapsuleInterface.html>.

use annals::history::Record;
use annals::{FieldValue, Metadata};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};
use std::collections::BTreeMap;
use std::ffi::{CString, c_char, c_void};
use std::sync::Arc;

/// `ArrowSchema` of the C Data Interface.
#[repr(C)]
pub struct FfiSchema {
    format: *const c_char,
    name: *const c_char,
    metadata: *const c_char,
    flags: i64,
    n_children: i64,
    children: *mut *mut FfiSchema,
    dictionary: *mut FfiSchema,
    release: Option<unsafe extern "C" fn(*mut FfiSchema)>,
    private_data: *mut c_void,
}

/// `ArrowArray` of the C Data Interface.
#[repr(C)]
pub struct FfiArray {
    length: i64,
    null_count: i64,
    offset: i64,
    n_buffers: i64,
    n_children: i64,
    buffers: *mut *const c_void,
    children: *mut *mut FfiArray,
    dictionary: *mut FfiArray,
    release: Option<unsafe extern "C" fn(*mut FfiArray)>,
    private_data: *mut c_void,
}

// SAFETY: the structs only point at memory their private data owns (an `Arc` of immutable
// buffers and boxed children); they travel in capsules and are released exactly once.
unsafe impl Send for FfiSchema {}
unsafe impl Send for FfiArray {}

// A capsule the consumer never moved the struct out of still owns it.
impl Drop for FfiSchema {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: `release` is ours and frees what `private_data` owns, once.
            unsafe { release(self) }
        }
    }
}

impl Drop for FfiArray {
    fn drop(&mut self) {
        if let Some(release) = self.release {
            // SAFETY: as for the schema.
            unsafe { release(self) }
        }
    }
}

const NULLABLE: i64 = 2;

/// A buffer of 8-byte words (Arrow wants aligned buffers); its tail is zero padding.
#[derive(Default)]
struct Buffer {
    words: Vec<u64>,
}

impl Buffer {
    fn from_bytes(data: &[u8]) -> Buffer {
        let mut words = vec![0u64; data.len().div_ceil(8)];
        for (word, chunk) in words.iter_mut().zip(data.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            *word = u64::from_ne_bytes(b);
        }
        Buffer { words }
    }

    fn ptr(&self) -> *const c_void {
        self.words.as_ptr() as *const c_void
    }
}

/// One column's values as they are collected.
enum Values {
    Timestamp(Vec<i64>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    Utf8(Vec<u8>, Vec<i32>),
    Binary(Vec<u8>, Vec<i32>),
}

struct Column {
    name: String,
    values: Values,
    valid: Vec<bool>,
}

impl Column {
    fn format(&self) -> &'static str {
        match self.values {
            Values::Timestamp(_) => "tsn:UTC",
            Values::F64(_) => "g",
            Values::I64(_) => "l",
            Values::Bool(_) => "b",
            Values::Utf8(..) => "u",
            Values::Binary(..) => "z",
        }
    }

    /// Validity bitmap (None without nulls) and the data buffers.
    fn buffers(&self) -> (usize, Option<Buffer>, Vec<Buffer>) {
        let nulls = self.valid.iter().filter(|v| !**v).count();
        let validity = (nulls > 0).then(|| Buffer::from_bytes(&bits(&self.valid)));
        let data = match &self.values {
            // The C Data Interface is native-endian, as these words are.
            Values::Timestamp(v) | Values::I64(v) => vec![Buffer {
                words: v.iter().map(|&x| x as u64).collect(),
            }],
            Values::F64(v) => vec![Buffer {
                words: v.iter().map(|x| x.to_bits()).collect(),
            }],
            Values::Bool(v) => vec![Buffer::from_bytes(&bits(v))],
            Values::Utf8(data, offsets) | Values::Binary(data, offsets) => vec![
                Buffer::from_bytes(&offsets.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<_>>()),
                Buffer::from_bytes(data),
            ],
        };
        (nulls, validity, data)
    }
}

fn bits(values: &[bool]) -> Vec<u8> {
    let mut out = vec![0u8; values.len().div_ceil(8)];
    for (i, v) in values.iter().enumerate() {
        if *v {
            out[i / 8] |= 1 << (i % 8);
        }
    }
    out
}

/// Columns filled row by row; a column first seen at row `n` gets nulls for rows before it.
struct Builder {
    rows: usize,
    columns: Vec<Column>,
    index: BTreeMap<String, usize>,
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

/// The data class fields of a record kind and their column types: the columns a batch of
/// that kind always has (all null when no record set them), before its tag and extra
/// columns.
fn fixed_columns(kind: &str) -> &'static [(&'static str, char)] {
    match kind {
        "metrics" => &[
            ("timestamp", 't'),
            ("metric_type", 'u'),
            ("metric_name", 'u'),
            ("value", 'g'),
            ("unit", 'u'),
        ],
        "performance" => &[
            ("timestamp", 't'),
            ("component", 'u'),
            ("operation", 'u'),
            ("duration_ms", 'g'),
            ("throughput", 'g'),
            ("efficiency_percent", 'g'),
            ("error_count", 'l'),
        ],
        "logs" => &[
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
        _ => &[
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

impl Builder {
    fn new(kind: &str) -> Builder {
        let mut builder = Builder {
            rows: 0,
            columns: Vec::new(),
            index: BTreeMap::new(),
        };
        for &(name, type_) in fixed_columns(kind) {
            let values = match type_ {
                't' => Values::Timestamp(Vec::new()),
                'g' => Values::F64(Vec::new()),
                'l' => Values::I64(Vec::new()),
                _ => Values::Utf8(Vec::new(), vec![0]),
            };
            builder.index.insert(name.to_string(), builder.columns.len());
            builder.columns.push(Column {
                name: name.to_string(),
                values,
                valid: Vec::new(),
            });
        }
        builder
    }

    fn empty_like(cell: &Cell<'_>) -> Option<Values> {
        Some(match cell {
            Cell::Null => return None,
            Cell::Time(_) => Values::Timestamp(Vec::new()),
            Cell::F64(_) | Cell::Value(FieldValue::F64(_)) => Values::F64(Vec::new()),
            Cell::I64(_) | Cell::Value(FieldValue::I64(_)) => Values::I64(Vec::new()),
            Cell::Value(FieldValue::Bool(_)) => Values::Bool(Vec::new()),
            Cell::Text(_) | Cell::Value(FieldValue::Str(_)) => Values::Utf8(Vec::new(), vec![0]),
            Cell::Value(FieldValue::Bytes(_)) => Values::Binary(Vec::new(), vec![0]),
        })
    }

    /// Sets `name` of the current row (`self.rows`).
    fn set(&mut self, name: &str, cell: Cell<'_>) {
        let at = match self.index.get(name) {
            Some(&i) => i,
            None => {
                let Some(values) = Self::empty_like(&cell) else { return };
                let mut column = Column {
                    name: name.to_string(),
                    values,
                    valid: Vec::new(),
                };
                for _ in 0..self.rows {
                    push_null(&mut column);
                }
                self.columns.push(column);
                self.index.insert(name.to_string(), self.columns.len() - 1);
                self.columns.len() - 1
            }
        };
        let column = &mut self.columns[at];
        if column.valid.len() > self.rows {
            return; // set twice in one row: the first value stays
        }
        if !push(column, &cell) {
            // A value of another type than the column's: shown as text would lose the
            // type, so the column keeps its type and this cell is null.
            push_null(column);
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
}

fn push_null(column: &mut Column) {
    column.valid.push(false);
    match &mut column.values {
        Values::Timestamp(v) | Values::I64(v) => v.push(0),
        Values::F64(v) => v.push(0.0),
        Values::Bool(v) => v.push(false),
        Values::Utf8(data, offsets) | Values::Binary(data, offsets) => offsets.push(data.len() as i32),
    }
}

/// Appends `cell` when its type is the column's; false otherwise.
fn push(column: &mut Column, cell: &Cell<'_>) -> bool {
    let ok = match (&mut column.values, cell) {
        (_, Cell::Null) => return false,
        (Values::Timestamp(v), Cell::Time(t)) => {
            v.push(*t);
            true
        }
        (Values::F64(v), Cell::F64(x) | Cell::Value(FieldValue::F64(x))) => {
            v.push(*x);
            true
        }
        (Values::I64(v), Cell::I64(x) | Cell::Value(FieldValue::I64(x))) => {
            v.push(*x);
            true
        }
        (Values::Bool(v), Cell::Value(FieldValue::Bool(x))) => {
            v.push(*x);
            true
        }
        (Values::Utf8(data, offsets), Cell::Text(s)) => push_bytes(data, offsets, s.as_bytes()),
        (Values::Utf8(data, offsets), Cell::Value(FieldValue::Str(s))) => push_bytes(data, offsets, s.as_bytes()),
        (Values::Binary(data, offsets), Cell::Value(FieldValue::Bytes(b))) => push_bytes(data, offsets, b),
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

fn text_or_null(s: &Option<String>) -> Cell<'_> {
    s.as_deref().map_or(Cell::Null, Cell::Text)
}

fn extra(builder: &mut Builder, prefix: &str, values: &Metadata) {
    for (k, v) in values {
        builder.set(&format!("{prefix}.{k}"), Cell::Value(v));
    }
}

fn tags(builder: &mut Builder, tags: &BTreeMap<String, String>) {
    for (k, v) in tags {
        builder.set(&format!("tags.{k}"), Cell::Text(v));
    }
}

fn kind_name(record: &Record) -> &'static str {
    match record {
        Record::Metric(_) => "metrics",
        Record::Performance(_) => "performance",
        Record::Log(_) => "logs",
        Record::Alert(_) => "alerts",
    }
}

/// One batch per record kind of `rows`, in the order the kinds first appear.
pub fn batches(rows: &[Record]) -> Vec<(String, ArrowBatch)> {
    let mut builders: Vec<(&'static str, Builder)> = Vec::new();
    for record in rows {
        let kind = kind_name(record);
        let at = match builders.iter().position(|(k, _)| *k == kind) {
            Some(i) => i,
            None => {
                builders.push((kind, Builder::new(kind)));
                builders.len() - 1
            }
        };
        let b = &mut builders[at].1;
        match record {
            Record::Metric(m) => {
                b.set("timestamp", Cell::Time(m.timestamp));
                b.set("metric_type", Cell::Text(&m.metric_type));
                b.set("metric_name", Cell::Text(&m.metric_name));
                b.set("value", Cell::F64(m.value));
                b.set("unit", text_or_null(&m.unit));
                tags(b, &m.tags);
            }
            Record::Performance(p) => {
                b.set("timestamp", Cell::Time(p.timestamp));
                b.set("component", Cell::Text(&p.component));
                b.set("operation", Cell::Text(&p.operation));
                b.set("duration_ms", p.duration_ms.map_or(Cell::Null, Cell::F64));
                b.set("throughput", p.throughput.map_or(Cell::Null, Cell::F64));
                b.set("efficiency_percent", p.efficiency_percent.map_or(Cell::Null, Cell::F64));
                b.set("error_count", Cell::I64(p.error_count));
                extra(b, "metadata", &p.metadata);
                tags(b, &p.tags);
            }
            Record::Log(l) => {
                b.set("timestamp", Cell::Time(l.timestamp));
                b.set("level", Cell::Text(l.level.as_str()));
                b.set("logger_name", Cell::Text(&l.logger_name));
                b.set("message", Cell::Text(&l.message));
                b.set("module", text_or_null(&l.module));
                b.set("function_name", text_or_null(&l.function_name));
                b.set("line_number", l.line_number.map_or(Cell::Null, Cell::I64));
                b.set("thread_id", l.thread_id.map_or(Cell::Null, Cell::I64));
                b.set("process_id", l.process_id.map_or(Cell::Null, Cell::I64));
                extra(b, "extra_data", &l.extra_data);
                tags(b, &l.tags);
            }
            Record::Alert(a) => {
                b.set("timestamp", Cell::Time(a.timestamp));
                b.set("alert_id", Cell::Text(&a.alert_id));
                b.set("state", Cell::Text(a.state.as_str()));
                b.set("level", Cell::Text(a.level.as_str()));
                b.set("category", Cell::Text(&a.category));
                b.set("title", Cell::Text(&a.title));
                b.set("description", text_or_null(&a.description));
                b.set("source_component", text_or_null(&a.source_component));
                extra(b, "metadata", &a.metadata);
            }
        }
        b.end_row();
    }
    builders
        .into_iter()
        .map(|(kind, builder)| (kind.to_string(), ArrowBatch::from_builder(builder)))
        .collect()
}

/// A column's finished buffers.
struct Finished {
    name: CString,
    format: CString,
    nulls: usize,
    validity: Option<Buffer>,
    data: Vec<Buffer>,
}

struct BatchData {
    rows: usize,
    columns: Vec<Finished>,
}

/// Record batch of one record kind; `pyarrow.record_batch(batch)` imports it without
/// copying its buffers.
#[pyclass(module = "annals._annals", frozen)]
pub struct ArrowBatch {
    data: Arc<BatchData>,
}

impl ArrowBatch {
    fn from_builder(builder: Builder) -> ArrowBatch {
        let columns = builder
            .columns
            .iter()
            .map(|c| {
                let (nulls, validity, data) = c.buffers();
                Finished {
                    // Field and tag names hold no NUL (the store refuses them); a name that
                    // did would lose its tail.
                    name: CString::new(c.name.replace('\0', "")).unwrap_or_default(),
                    format: CString::new(c.format()).unwrap_or_default(),
                    nulls,
                    validity,
                    data,
                }
            })
            .collect();
        ArrowBatch {
            data: Arc::new(BatchData {
                rows: builder.rows,
                columns,
            }),
        }
    }

    fn schema(&self) -> FfiSchema {
        let children: Vec<*mut FfiSchema> = self
            .data
            .columns
            .iter()
            .map(|c| {
                Box::into_raw(Box::new(FfiSchema {
                    format: c.format.as_ptr(),
                    name: c.name.as_ptr(),
                    metadata: std::ptr::null(),
                    flags: NULLABLE,
                    n_children: 0,
                    children: std::ptr::null_mut(),
                    dictionary: std::ptr::null_mut(),
                    release: Some(release_schema),
                    private_data: Box::into_raw(Box::new(SchemaPrivate {
                        _owner: self.data.clone(),
                        children: Vec::new(),
                    })) as *mut c_void,
                }))
            })
            .collect();
        let mut private = Box::new(SchemaPrivate {
            _owner: self.data.clone(),
            children,
        });
        FfiSchema {
            format: c"+s".as_ptr(),
            name: c"".as_ptr(),
            metadata: std::ptr::null(),
            flags: 0,
            n_children: private.children.len() as i64,
            children: private.children.as_mut_ptr(),
            dictionary: std::ptr::null_mut(),
            release: Some(release_schema),
            private_data: Box::into_raw(private) as *mut c_void,
        }
    }

    fn array(&self) -> FfiArray {
        let children: Vec<*mut FfiArray> = self
            .data
            .columns
            .iter()
            .map(|c| {
                let mut buffers: Vec<*const c_void> = vec![c.validity.as_ref().map_or(std::ptr::null(), Buffer::ptr)];
                buffers.extend(c.data.iter().map(Buffer::ptr));
                let mut private = Box::new(ArrayPrivate {
                    _owner: self.data.clone(),
                    buffers,
                    children: Vec::new(),
                });
                Box::into_raw(Box::new(FfiArray {
                    length: self.data.rows as i64,
                    null_count: c.nulls as i64,
                    offset: 0,
                    n_buffers: private.buffers.len() as i64,
                    n_children: 0,
                    buffers: private.buffers.as_mut_ptr(),
                    children: std::ptr::null_mut(),
                    dictionary: std::ptr::null_mut(),
                    release: Some(release_array),
                    private_data: Box::into_raw(private) as *mut c_void,
                }))
            })
            .collect();
        let mut private = Box::new(ArrayPrivate {
            _owner: self.data.clone(),
            buffers: vec![std::ptr::null()],
            children,
        });
        FfiArray {
            length: self.data.rows as i64,
            null_count: 0,
            offset: 0,
            n_buffers: 1,
            n_children: private.children.len() as i64,
            buffers: private.buffers.as_mut_ptr(),
            children: private.children.as_mut_ptr(),
            dictionary: std::ptr::null_mut(),
            release: Some(release_array),
            private_data: Box::into_raw(private) as *mut c_void,
        }
    }
}

struct SchemaPrivate {
    _owner: Arc<BatchData>,
    children: Vec<*mut FfiSchema>,
}

struct ArrayPrivate {
    _owner: Arc<BatchData>,
    buffers: Vec<*const c_void>,
    children: Vec<*mut FfiArray>,
}

unsafe extern "C" fn release_schema(schema: *mut FfiSchema) {
    // SAFETY: called by the consumer (or our Drop) on a schema this module built, whose
    // private data is a boxed `SchemaPrivate` and whose children are boxed schemas.
    unsafe {
        if schema.is_null() || (*schema).release.is_none() {
            return;
        }
        let private = Box::from_raw((*schema).private_data as *mut SchemaPrivate);
        for &child in &private.children {
            if let Some(release) = (*child).release {
                release(child);
            }
            drop(Box::from_raw(child));
        }
        (*schema).release = None;
    }
}

unsafe extern "C" fn release_array(array: *mut FfiArray) {
    // SAFETY: as for `release_schema`, with `ArrayPrivate`.
    unsafe {
        if array.is_null() || (*array).release.is_none() {
            return;
        }
        let private = Box::from_raw((*array).private_data as *mut ArrayPrivate);
        for &child in &private.children {
            if let Some(release) = (*child).release {
                release(child);
            }
            drop(Box::from_raw(child));
        }
        (*array).release = None;
    }
}

#[pymethods]
impl ArrowBatch {
    /// Rows in the batch.
    fn __len__(&self) -> usize {
        self.data.rows
    }

    /// Column names, in order.
    #[getter]
    fn column_names(&self) -> Vec<String> {
        self.data.columns.iter().map(|c| c.name.to_string_lossy().into_owned()).collect()
    }

    /// The schema as an `arrow_schema` capsule.
    fn __arrow_c_schema__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyCapsule>> {
        PyCapsule::new_with_value(py, self.schema(), c"arrow_schema")
    }

    /// The batch as a struct array: `(arrow_schema, arrow_array)` capsules. A requested
    /// schema is not applied (the consumer casts afterwards, as the protocol allows).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_array__<'py>(&self, py: Python<'py>, requested_schema: Option<Bound<'py, PyAny>>) -> PyResult<Bound<'py, PyTuple>> {
        let _ = requested_schema;
        let schema = PyCapsule::new_with_value(py, self.schema(), c"arrow_schema")?;
        let array = PyCapsule::new_with_value(py, self.array(), c"arrow_array")?;
        PyTuple::new(py, [schema.into_any(), array.into_any()])
    }

    /// Address of a column's first data buffer, to check that a consumer did not copy it.
    fn buffer_address(&self, column: usize) -> Option<usize> {
        let c = self.data.columns.get(column)?;
        c.data.first().map(|b| b.ptr() as usize)
    }
}
