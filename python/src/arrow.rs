//! Query pages as Arrow record batches over the Arrow C Data Interface and its PyCapsule
//! protocol (`__arrow_c_schema__`, `__arrow_c_array__`), so `pyarrow.record_batch(obj)`,
//! polars and DuckDB import the columns without copying them and without annals depending
//! on any Arrow crate. The buffers are the library's table columns (`annals::history::RecordTable`),
//! moved (integers, floats) or copied (text) into 8-byte aligned buffers, and owned by an `Arc` the consumer releases.
//!
//! Specification: <https://arrow.apache.org/docs/format/CDataInterface.html> and
//! <https://arrow.apache.org/docs/format/CDataInterface/PyCapsuleInterface.html>.

use annals::history::{Record, RecordTable, TableColumn, TableValues};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyTuple};
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

/// A buffer of 8-byte aligned words (Arrow wants aligned buffers): the table's own
/// integer and float columns, moved here, or bytes copied into words with zero padding.
enum Buffer {
    Words(Vec<u64>),
    I64(Vec<i64>),
    F64(Vec<f64>),
}

impl Buffer {
    fn from_bytes(data: &[u8]) -> Buffer {
        let mut words = vec![0u64; data.len().div_ceil(8)];
        for (word, chunk) in words.iter_mut().zip(data.chunks(8)) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            *word = u64::from_ne_bytes(b);
        }
        Buffer::Words(words)
    }

    fn ptr(&self) -> *const c_void {
        match self {
            Buffer::Words(v) => v.as_ptr() as *const c_void,
            Buffer::I64(v) => v.as_ptr() as *const c_void,
            Buffer::F64(v) => v.as_ptr() as *const c_void,
        }
    }
}

/// The Arrow format string of a column.
fn format(values: &TableValues) -> &'static str {
    match values {
        TableValues::Timestamp(_) => "tsn:UTC",
        TableValues::F64(_) => "g",
        TableValues::I64(_) => "l",
        TableValues::Bool(_) => "b",
        TableValues::Utf8 { .. } => "u",
        TableValues::Binary { .. } => "z",
    }
}

/// Null count, validity bitmap (None without nulls) and the data buffers of a column.
fn buffers(column: TableColumn) -> (usize, Option<Buffer>, Vec<Buffer>) {
    let nulls = column.valid.iter().filter(|v| !**v).count();
    let validity = (nulls > 0).then(|| Buffer::from_bytes(&bits(&column.valid)));
    let data = match column.values {
        // The C Data Interface is native-endian, as these vectors are.
        TableValues::Timestamp(v) | TableValues::I64(v) => vec![Buffer::I64(v)],
        TableValues::F64(v) => vec![Buffer::F64(v)],
        TableValues::Bool(v) => vec![Buffer::from_bytes(&bits(&v))],
        TableValues::Utf8 { data, offsets } | TableValues::Binary { data, offsets } => vec![
            Buffer::from_bytes(&offsets.iter().flat_map(|x| x.to_ne_bytes()).collect::<Vec<_>>()),
            Buffer::from_bytes(&data),
        ],
    };
    (nulls, validity, data)
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

/// One batch per record kind of `rows`, in the order the kinds first appear.
pub fn batches(rows: &[Record]) -> Vec<(String, ArrowBatch)> {
    RecordTable::from_records(rows)
        .into_iter()
        .map(|table| (table.kind.as_str().to_string(), ArrowBatch::from_table(table)))
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
    /// The batch of a table; its columns become the Arrow buffers.
    pub fn from_table(table: RecordTable) -> ArrowBatch {
        let rows = table.rows;
        let columns = table
            .columns
            .into_iter()
            .map(|c| {
                // Field and tag names hold no NUL (the store refuses them); a name that
                // did would lose its tail.
                let name = CString::new(c.name.replace('\0', "")).unwrap_or_default();
                let format = CString::new(format(&c.values)).unwrap_or_default();
                let (nulls, validity, data) = buffers(c);
                Finished {
                    name,
                    format,
                    nulls,
                    validity,
                    data,
                }
            })
            .collect();
        ArrowBatch {
            data: Arc::new(BatchData { rows, columns }),
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
