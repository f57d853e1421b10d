//! Export of a query's rows as an Apache Parquet file (the `parquet` crate of arrow-rs,
//! its low-level writer), streamed: rows are gathered into row groups of at most
//! [`ROW_GROUP_ROWS`] rows or about [`ROW_GROUP_BYTES`] bytes of values, and each row group
//! is written out as soon as it is complete, so memory stays bounded whatever the size of
//! the answer. DuckDB, DataFusion, Spark, pandas and Polars read the files.
//!
//! Columns are those of the CSV export: `time` (a UTC timestamp in nanoseconds, or a plain
//! 64-bit integer with integer times), the tag columns (strings) and the value columns.
//! A value column's Parquet type comes from the values of the first row group: floats
//! (`DOUBLE`), integers (`INT64`), booleans, strings or bytes. A column that holds integers
//! and floats there is `DOUBLE`; one that holds other mixtures, or no value at all, is a
//! string column. A later value that does not fit its column's type ends the export with
//! [`Error::InvalidInput`] naming the column and the row; integers in a float column are
//! converted (exactly up to 2^53).

use super::QueryResult;
use super::export::{ExportOptions, ExportSummary};
use crate::error::{Error, Result};
use crate::model::FieldValue;
use parquet::basic::{Compression, LogicalType, Repetition, TimeUnit, Type as PhysicalType, ZstdLevel};
use parquet::data_type::{BoolType, ByteArray, ByteArrayType, DoubleType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::Type;
use std::io::Write;
use std::sync::Arc;

/// How a Parquet file lays out its columns beyond the query's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ParquetLayout {
    /// Times in microseconds (`TIMESTAMP(MICROS)`, which Spark reads) rather than
    /// nanoseconds; the nanoseconds below a microsecond are dropped (rounded down).
    pub micros: bool,
    /// Leading string columns holding one value on every row, after `time` (a dataset
    /// export's `kind` and `measurement` where they are not partition keys).
    pub constants: Vec<(String, String)>,
}

/// Rows per row group at most.
pub const ROW_GROUP_ROWS: usize = 1 << 17;
/// Bytes of buffered values after which a row group is written early (long log messages).
pub const ROW_GROUP_BYTES: usize = 64 << 20;

/// The Parquet type of a value column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnType {
    Double,
    Int64,
    Boolean,
    Text,
    Bytes,
}

impl ColumnType {
    fn name(self) -> &'static str {
        match self {
            ColumnType::Double => "float",
            ColumnType::Int64 => "integer",
            ColumnType::Boolean => "boolean",
            ColumnType::Text => "string",
            ColumnType::Bytes => "bytes",
        }
    }

    /// The type of a column from the values it holds in the first row group.
    fn of_values<'a>(values: impl Iterator<Item = &'a FieldValue>) -> ColumnType {
        let mut seen: Option<ColumnType> = None;
        for value in values {
            let this = value_type(value);
            seen = Some(match seen {
                None => this,
                Some(before) if before == this => before,
                Some(ColumnType::Double | ColumnType::Int64) if matches!(this, ColumnType::Double | ColumnType::Int64) => {
                    ColumnType::Double
                }
                // Any other mixture is kept as text, which every value has.
                Some(_) => return ColumnType::Text,
            });
        }
        seen.unwrap_or(ColumnType::Text)
    }
}

fn value_type(value: &FieldValue) -> ColumnType {
    match value {
        FieldValue::F64(_) => ColumnType::Double,
        FieldValue::I64(_) => ColumnType::Int64,
        FieldValue::Bool(_) => ColumnType::Boolean,
        FieldValue::Str(_) => ColumnType::Text,
        FieldValue::Bytes(_) => ColumnType::Bytes,
    }
}

/// The values of one column of the row group being gathered, and their definition levels
/// (0 for a missing value, 1 for a present one).
struct ColumnBuffer {
    column_type: ColumnType,
    doubles: Vec<f64>,
    integers: Vec<i64>,
    booleans: Vec<bool>,
    bytes: Vec<ByteArray>,
    levels: Vec<i16>,
}

impl ColumnBuffer {
    fn new(column_type: ColumnType) -> ColumnBuffer {
        ColumnBuffer {
            column_type,
            doubles: Vec::new(),
            integers: Vec::new(),
            booleans: Vec::new(),
            bytes: Vec::new(),
            levels: Vec::new(),
        }
    }

    fn push_missing(&mut self) {
        self.levels.push(0);
    }

    fn push_text(&mut self, text: &str) -> usize {
        self.bytes.push(ByteArray::from(text.as_bytes().to_vec()));
        self.levels.push(1);
        text.len()
    }

    /// Adds a value; the bytes it adds to the buffer, or `None` when it does not fit the
    /// column's type.
    fn push_value(&mut self, value: &FieldValue) -> Option<usize> {
        match (self.column_type, value) {
            (ColumnType::Double, FieldValue::F64(v)) => self.doubles.push(*v),
            (ColumnType::Double, FieldValue::I64(v)) => self.doubles.push(*v as f64),
            (ColumnType::Int64, FieldValue::I64(v)) => self.integers.push(*v),
            (ColumnType::Boolean, FieldValue::Bool(v)) => self.booleans.push(*v),
            (ColumnType::Bytes, FieldValue::Bytes(v)) => {
                self.bytes.push(ByteArray::from(v.clone()));
                self.levels.push(1);
                return Some(v.len());
            }
            (ColumnType::Text, FieldValue::Bytes(_)) => {
                // As the JSON answers carry bytes: base64.
                let text = value.to_json();
                return Some(self.push_text(text.as_str().unwrap_or_default()));
            }
            (ColumnType::Text, FieldValue::Str(v)) => return Some(self.push_text(v)),
            (ColumnType::Text, other) => return Some(self.push_text(&other.to_string())),
            _ => return None,
        }
        self.levels.push(1);
        Some(8)
    }

    fn clear(&mut self) {
        self.doubles.clear();
        self.integers.clear();
        self.booleans.clear();
        self.bytes.clear();
        self.levels.clear();
    }
}

fn parquet_error(error: parquet::errors::ParquetError) -> Error {
    match error {
        parquet::errors::ParquetError::External(source) => match source.downcast::<std::io::Error>() {
            Ok(io) => write_error(*io),
            Err(other) => Error::Invariant(format!("the Parquet writer failed: {other}")),
        },
        other => Error::Invariant(format!("the Parquet writer failed: {other}")),
    }
}

fn write_error(source: std::io::Error) -> Error {
    Error::Io {
        op: "write the export",
        path: "".into(),
        source,
    }
}

/// The file's schema: `time`, the tags, the values.
fn schema(result: &QueryResult, options: ExportOptions, layout: &ParquetLayout, value_types: &[ColumnType]) -> Result<Type> {
    let build = |builder: parquet::schema::types::PrimitiveTypeBuilder<'_>| builder.build().map(Arc::new).map_err(parquet_error);
    let mut fields = Vec::new();
    if result.time_column {
        let unit = if layout.micros { TimeUnit::MICROS } else { TimeUnit::NANOS };
        let time_type = (!options.integer_times).then(|| LogicalType::timestamp(true, unit));
        fields.push(build(
            Type::primitive_type_builder("time", PhysicalType::INT64)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(time_type),
        )?);
    }
    for (name, _) in &layout.constants {
        fields.push(build(
            Type::primitive_type_builder(name, PhysicalType::BYTE_ARRAY)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(Some(LogicalType::String)),
        )?);
    }
    for tag in &result.tag_columns {
        fields.push(build(
            Type::primitive_type_builder(tag, PhysicalType::BYTE_ARRAY)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(Some(LogicalType::String)),
        )?);
    }
    for (name, column_type) in result.value_columns.iter().zip(value_types) {
        let (physical, logical) = match column_type {
            ColumnType::Double => (PhysicalType::DOUBLE, None),
            ColumnType::Int64 => (PhysicalType::INT64, None),
            ColumnType::Boolean => (PhysicalType::BOOLEAN, None),
            ColumnType::Text => (PhysicalType::BYTE_ARRAY, Some(LogicalType::String)),
            ColumnType::Bytes => (PhysicalType::BYTE_ARRAY, None),
        };
        fields.push(build(
            Type::primitive_type_builder(name, physical)
                .with_repetition(Repetition::OPTIONAL)
                .with_logical_type(logical),
        )?);
    }
    Type::group_type_builder("annals")
        .with_fields(fields)
        .build()
        .map_err(parquet_error)
}

/// A row group being gathered: the time column, the tag columns, the value columns.
struct RowGroup {
    time: ColumnBuffer,
    /// Divides times: 1 (nanoseconds) or 1,000 (microseconds).
    time_divisor: i64,
    /// The constant columns: each one's value, and its buffer.
    constants: Vec<(ByteArray, ColumnBuffer)>,
    tags: Vec<ColumnBuffer>,
    /// The tag values of the series seen, as Parquet byte arrays, keyed by the address of
    /// the rows' shared tag list (kept alive here, so an address is never reused): a row
    /// clones them (a reference count) instead of copying its strings.
    tag_cache: std::collections::HashMap<usize, CachedTags>,
    values: Vec<ColumnBuffer>,
    rows: usize,
    bytes: usize,
}

/// A series' shared tag list and its values as Parquet byte arrays.
type CachedTags = (Arc<[Option<String>]>, Vec<Option<ByteArray>>);

/// Series whose tags [`RowGroup`] keeps converted at most; past it the cache starts over.
const TAG_CACHE_SERIES: usize = 65_536;

impl RowGroup {
    fn new(tags: usize, value_types: &[ColumnType], layout: &ParquetLayout) -> RowGroup {
        RowGroup {
            time: ColumnBuffer::new(ColumnType::Int64),
            time_divisor: if layout.micros { 1_000 } else { 1 },
            constants: layout
                .constants
                .iter()
                .map(|(_, value)| (ByteArray::from(value.as_bytes().to_vec()), ColumnBuffer::new(ColumnType::Text)))
                .collect(),
            tags: (0..tags).map(|_| ColumnBuffer::new(ColumnType::Text)).collect(),
            tag_cache: std::collections::HashMap::new(),
            values: value_types.iter().map(|t| ColumnBuffer::new(*t)).collect(),
            rows: 0,
            bytes: 0,
        }
    }

    /// Adds a row (`number` counts from 1 in the whole export, for the error).
    fn push(&mut self, row: &super::QueryRow, value_names: &[String], number: u64) -> Result<()> {
        match row.time {
            Some(t) => {
                self.time.integers.push(t.div_euclid(self.time_divisor));
                self.time.levels.push(1);
            }
            None => self.time.push_missing(),
        }
        for (value, buffer) in &mut self.constants {
            // A clone shares the bytes.
            buffer.bytes.push(value.clone());
            buffer.levels.push(1);
        }
        let mut bytes = 8;
        if self.tag_cache.len() >= TAG_CACHE_SERIES {
            self.tag_cache.clear();
        }
        let (_, converted) = self
            .tag_cache
            .entry(Arc::as_ptr(&row.tags) as *const () as usize)
            .or_insert_with(|| {
                let converted = row
                    .tags
                    .iter()
                    .map(|tag| tag.as_ref().map(|text| ByteArray::from(text.as_bytes().to_vec())))
                    .collect();
                (row.tags.clone(), converted)
            });
        for (buffer, tag) in self.tags.iter_mut().zip(converted.iter()) {
            match tag {
                Some(value) => {
                    bytes += value.len();
                    buffer.bytes.push(value.clone());
                    buffer.levels.push(1);
                }
                None => buffer.push_missing(),
            }
        }
        for ((buffer, value), name) in self.values.iter_mut().zip(&row.values).zip(value_names) {
            match value {
                None => buffer.push_missing(),
                Some(value) => match buffer.push_value(value) {
                    Some(added) => bytes += added,
                    None => {
                        return Err(Error::InvalidInput {
                            line: None,
                            column: None,
                            reason: format!(
                                "row {number} of the export has a {} value in column {name:?}, which holds {} values in the first rows; \
                                 export as csv or ndjson, or select fields of one type",
                                value_type(value).name(),
                                buffer.column_type.name()
                            ),
                        });
                    }
                },
            }
        }
        self.rows += 1;
        self.bytes += bytes;
        Ok(())
    }

    fn full(&self) -> bool {
        self.rows >= ROW_GROUP_ROWS || self.bytes >= ROW_GROUP_BYTES
    }

    /// Writes the row group to the file and empties it.
    fn write(&mut self, file: &mut SerializedFileWriter<Vec<u8>>, time_column: bool) -> Result<()> {
        let mut group = file.next_row_group().map_err(parquet_error)?;
        let columns = time_column
            .then_some(&mut self.time)
            .into_iter()
            .chain(self.constants.iter_mut().map(|(_, buffer)| buffer))
            .chain(self.tags.iter_mut())
            .chain(self.values.iter_mut());
        for buffer in columns {
            let Some(mut column) = group.next_column().map_err(parquet_error)? else {
                return Err(Error::Invariant("the Parquet schema has fewer columns than the export".into()));
            };
            let levels = Some(buffer.levels.as_slice());
            match buffer.column_type {
                ColumnType::Double => column.typed::<DoubleType>().write_batch(&buffer.doubles, levels, None),
                ColumnType::Int64 => column.typed::<Int64Type>().write_batch(&buffer.integers, levels, None),
                ColumnType::Boolean => column.typed::<BoolType>().write_batch(&buffer.booleans, levels, None),
                ColumnType::Text | ColumnType::Bytes => column.typed::<ByteArrayType>().write_batch(&buffer.bytes, levels, None),
            }
            .map_err(parquet_error)?;
            column.close().map_err(parquet_error)?;
            buffer.clear();
        }
        group.close().map_err(parquet_error)?;
        self.rows = 0;
        self.bytes = 0;
        Ok(())
    }
}

/// Writes every row of `result` to `out` as a Parquet file, calling `progress` with the
/// rows written after each row group. The result's cursor (when its query had a limit) is
/// left on `result`.
pub(crate) fn export_parquet(
    result: &mut QueryResult,
    options: ExportOptions,
    layout: &ParquetLayout,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<ExportSummary> {
    write_parquet(result, options, layout, out, progress).map(|(summary, _)| summary)
}

/// [`export_parquet`], also answering the earliest and latest row times written (`None`
/// without a timed row).
pub(crate) fn write_parquet(
    result: &mut QueryResult,
    options: ExportOptions,
    layout: &ParquetLayout,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
) -> Result<(ExportSummary, Option<(i64, i64)>)> {
    let mut span: Option<(i64, i64)> = None;
    let time_column = result.time_column;
    let value_names = result.value_columns.clone();
    if !time_column && layout.constants.is_empty() && result.tag_columns.is_empty() && value_names.is_empty() {
        // Parquet counts rows by their columns' values: a file without columns has none.
        return Err(Error::invalid("a Parquet file needs a column, and this query's rows have none"));
    }
    // The first row group is gathered as rows: the value columns' types come from it.
    let mut first = Vec::new();
    let mut first_bytes = 0usize;
    let mut failed = None;
    for row in result.by_ref() {
        match row {
            Ok(row) => {
                first_bytes += row.values.iter().flatten().map(approximate_size).sum::<usize>() + 8;
                first.push(row);
                if first.len() >= ROW_GROUP_ROWS || first_bytes >= ROW_GROUP_BYTES {
                    break;
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let value_types: Vec<ColumnType> = (0..value_names.len())
        .map(|i| ColumnType::of_values(first.iter().filter_map(|row| row.values.get(i).and_then(Option::as_ref))))
        .collect();
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_created_by(format!("annals {}", env!("CARGO_PKG_VERSION")))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .build();
    let mut file = SerializedFileWriter::new(
        Vec::new(),
        Arc::new(schema(result, options, layout, &value_types)?),
        Arc::new(properties),
    )
    .map_err(parquet_error)?;
    let mut group = RowGroup::new(result.tag_columns.len(), &value_types, layout);
    let mut rows = 0u64;
    let mut bytes = 0u64;
    // The file writer writes into a vector, drained into `out` after each row group, so a
    // row group at most is held in encoded form.
    let mut drain = |file: &mut SerializedFileWriter<Vec<u8>>, out: &mut dyn Write| -> Result<()> {
        file.flush().map_err(write_error)?;
        let buffer = file.inner_mut();
        out.write_all(buffer).map_err(write_error)?;
        bytes += buffer.len() as u64;
        buffer.clear();
        Ok(())
    };
    let first_rows = std::mem::take(&mut first).into_iter().map(Ok);
    for row in first_rows.chain(result.by_ref()) {
        let row = row?;
        rows += 1;
        if let Some(t) = row.time {
            span = Some(span.map_or((t, t), |(first, last)| (first.min(t), last.max(t))));
        }
        group.push(&row, &value_names, rows)?;
        if group.full() {
            group.write(&mut file, time_column)?;
            drain(&mut file, out)?;
            progress(rows);
        }
    }
    if group.rows > 0 {
        group.write(&mut file, time_column)?;
    }
    drain(&mut file, out)?;
    let tail = file.into_inner().map_err(parquet_error)?;
    out.write_all(&tail).map_err(write_error)?;
    out.flush().map_err(write_error)?;
    progress(rows);
    let summary = ExportSummary {
        rows,
        bytes: bytes + tail.len() as u64,
    };
    Ok((summary, span))
}

fn approximate_size(value: &FieldValue) -> usize {
    match value {
        FieldValue::Str(text) => text.len(),
        FieldValue::Bytes(bytes) => bytes.len(),
        _ => 8,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{QueryRow, Rows};
    use parquet::file::reader::{FileReader, SerializedFileReader};
    use parquet::record::Field;
    use proptest::prelude::*;

    /// Values of one column: all of one type (`kind` 0 to 4), some missing.
    fn column_values(kind: u8) -> BoxedStrategy<Option<FieldValue>> {
        let value = match kind {
            0 => any::<f64>().prop_map(FieldValue::F64).boxed(),
            1 => any::<i64>().prop_map(FieldValue::I64).boxed(),
            2 => any::<bool>().prop_map(FieldValue::Bool).boxed(),
            3 => ".{0,12}".prop_map(FieldValue::Str).boxed(),
            _ => prop::collection::vec(any::<u8>(), 0..12).prop_map(FieldValue::Bytes).boxed(),
        };
        prop::option::of(value).boxed()
    }

    type Table = (
        bool,
        usize,
        Vec<u8>,
        Vec<(Option<i64>, Vec<Option<String>>, Vec<Option<FieldValue>>)>,
    );

    fn table() -> impl Strategy<Value = Table> {
        (any::<bool>(), 0usize..3, prop::collection::vec(0u8..5, 0..4)).prop_flat_map(|(time_column, tags, kinds)| {
            let row = (
                prop::option::of(any::<i64>()),
                prop::collection::vec(prop::option::of("[a-z]{0,6}"), tags),
                kinds.iter().map(|k| column_values(*k)).collect::<Vec<_>>(),
            );
            (Just(time_column), Just(tags), Just(kinds), prop::collection::vec(row, 0..60))
        })
    }

    /// A field in a form that compares NaN payloads by their bits.
    fn comparable(field: &Field) -> String {
        match field {
            Field::Double(v) => format!("double {:x}", v.to_bits()),
            other => format!("{other:?}"),
        }
    }

    fn expected(value: &Option<FieldValue>) -> Field {
        match value {
            None => Field::Null,
            Some(FieldValue::F64(v)) => Field::Double(*v),
            Some(FieldValue::I64(v)) => Field::Long(*v),
            Some(FieldValue::Bool(v)) => Field::Bool(*v),
            Some(FieldValue::Str(v)) => Field::Str(v.clone()),
            Some(FieldValue::Bytes(v)) => Field::Bytes(ByteArray::from(v.clone())),
        }
    }

    proptest! {
        #![proptest_config(crate::codec::tests::proptest_config())]
        #[test]
        fn rows_of_any_column_types_read_back_as_written((time_column, tags, kinds, rows) in table()) {
            prop_assume!(time_column || tags > 0 || !kinds.is_empty());
            let query_rows: Vec<QueryRow> = rows
                .iter()
                .map(|(time, tag_values, values)| QueryRow {
                    time: if time_column { *time } else { None },
                    tags: tag_values.clone().into(),
                    values: values.clone(),
                    series: None,
                    record_id: None,
                })
                .collect();
            let mut result = QueryResult {
                time_column,
                tag_columns: (0..tags).map(|i| format!("tag{i}")).collect(),
                value_columns: (0..kinds.len()).map(|i| format!("value({i})")).collect(),
                resolutions: vec![crate::manifest::Resolution::Detail],
                rows: Rows::Materialized(query_rows.clone().into_iter()),
                next_cursor: None,
            };
            let mut file = tempfile::NamedTempFile::new().unwrap();
            let options = ExportOptions { format: super::super::export::ExportFormat::Parquet, integer_times: false };
            let summary = export_parquet(&mut result, options, &ParquetLayout::default(), file.as_file_mut(), &mut |_| {}).unwrap();
            prop_assert_eq!(summary.rows, rows.len() as u64);
            prop_assert_eq!(summary.bytes, std::fs::metadata(file.path()).unwrap().len());
            let reader = SerializedFileReader::new(file.reopen().unwrap()).unwrap();
            let read: Vec<Vec<String>> = reader
                .get_row_iter(None)
                .unwrap()
                .map(|row| row.unwrap().get_column_iter().map(|(_, f)| comparable(f)).collect())
                .collect();
            prop_assert_eq!(read.len(), rows.len());
            for (row, got) in query_rows.iter().zip(&read) {
                let mut want = Vec::new();
                if time_column {
                    want.push(row.time.map_or(Field::Null, Field::Long));
                }
                want.extend(row.tags.iter().map(|t| t.clone().map_or(Field::Null, Field::Str)));
                want.extend(row.values.iter().map(expected));
                let want: Vec<String> = want.iter().map(comparable).collect();
                prop_assert_eq!(got, &want);
            }
        }
    }

    #[test]
    fn column_types_come_from_the_first_values() {
        let f = FieldValue::F64(1.5);
        let i = FieldValue::I64(2);
        let s = FieldValue::Str("x".into());
        let b = FieldValue::Bool(true);
        assert_eq!(ColumnType::of_values([&f, &f].into_iter()), ColumnType::Double);
        assert_eq!(ColumnType::of_values([&i, &f].into_iter()), ColumnType::Double);
        assert_eq!(ColumnType::of_values([&i].into_iter()), ColumnType::Int64);
        assert_eq!(ColumnType::of_values([&b, &i].into_iter()), ColumnType::Text);
        assert_eq!(ColumnType::of_values([&s, &f].into_iter()), ColumnType::Text);
        assert_eq!(ColumnType::of_values(std::iter::empty()), ColumnType::Text);
    }

    #[test]
    fn a_value_that_does_not_fit_its_column_is_refused() {
        let mut integers = ColumnBuffer::new(ColumnType::Int64);
        assert_eq!(integers.push_value(&FieldValue::I64(3)), Some(8));
        assert_eq!(integers.push_value(&FieldValue::F64(3.5)), None);
        let mut doubles = ColumnBuffer::new(ColumnType::Double);
        assert_eq!(doubles.push_value(&FieldValue::I64(3)), Some(8));
        assert_eq!(doubles.doubles, [3.0]);
        let mut text = ColumnBuffer::new(ColumnType::Text);
        assert_eq!(text.push_value(&FieldValue::Bytes(vec![0, 1])), Some(4));
        assert_eq!(text.bytes[0].data(), b"AAE=");
        assert_eq!(text.levels, [1]);
    }
}
