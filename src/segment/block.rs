//! One block: up to `block_max_rows` consecutive rows of one series, and its metadata.
//!
//! Block bytes:
//! ```text
//! n_rows varint | flags u8 | timestamps (len varint + ints) | [record ids (len varint + ints)]
//! n_columns varint | per column: field index varint, validity (len varint + bools; 0 =
//! all present), values (len varint + typed codec over present values)
//! crc32 u32 LE of all preceding block bytes
//! ```

use super::{BLOCK_COLUMN_CHECKSUMS, BLOCK_HAS_RECORD_IDS};
use crate::chunk::{Chunk, Column, ColumnValues};
use crate::codec::bytes::{Reader, put_bytes, put_ivarint, put_varint};
use crate::codec::{self, DecodeError, bools, ints};
use crate::model::ValueType;
use std::sync::Arc;

/// Summary statistics of one column in one block, over present values in row order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ColumnStats {
    /// `min`/`max` ignore NaN (both NaN when every value is); `sum` propagates NaN.
    F64 {
        min: f64,
        max: f64,
        sum: f64,
        first: f64,
        last: f64,
    },
    I64 {
        min: i64,
        max: i64,
        sum: i128,
        first: i64,
        last: i64,
    },
    Bool {
        trues: u64,
    },
    Str,
    Bytes,
}

impl ColumnStats {
    fn of(values: &ColumnValues, validity: &[bool]) -> ColumnStats {
        let present = |i: usize| validity.is_empty() || validity[i];
        match values {
            ColumnValues::F64(v) => {
                let mut it = v.iter().enumerate().filter(|(i, _)| present(*i)).map(|(_, x)| *x);
                let Some(first) = it.next() else {
                    return ColumnStats::F64 {
                        min: f64::NAN,
                        max: f64::NAN,
                        sum: 0.0,
                        first: f64::NAN,
                        last: f64::NAN,
                    };
                };
                let (mut min, mut max, mut sum, mut last) = (first, first, first, first);
                for x in it {
                    min = if min.is_nan() || x < min { x } else { min };
                    max = if max.is_nan() || x > max { x } else { max };
                    sum += x;
                    last = x;
                }
                ColumnStats::F64 {
                    min,
                    max,
                    sum,
                    first,
                    last,
                }
            }
            ColumnValues::I64(v) => {
                let mut it = v.iter().enumerate().filter(|(i, _)| present(*i)).map(|(_, x)| *x);
                let Some(first) = it.next() else {
                    return ColumnStats::I64 {
                        min: 0,
                        max: 0,
                        sum: 0,
                        first: 0,
                        last: 0,
                    };
                };
                let (mut min, mut max, mut sum, mut last) = (first, first, first as i128, first);
                for x in it {
                    min = min.min(x);
                    max = max.max(x);
                    sum += x as i128;
                    last = x;
                }
                ColumnStats::I64 {
                    min,
                    max,
                    sum,
                    first,
                    last,
                }
            }
            ColumnValues::Bool(v) => ColumnStats::Bool {
                trues: v.iter().enumerate().filter(|(i, b)| present(*i) && **b).count() as u64,
            },
            ColumnValues::Str(_) => ColumnStats::Str,
            ColumnValues::Bytes(_) => ColumnStats::Bytes,
        }
    }

    fn value_type(&self) -> ValueType {
        match self {
            ColumnStats::F64 { .. } => ValueType::F64,
            ColumnStats::I64 { .. } => ValueType::I64,
            ColumnStats::Bool { .. } => ValueType::Bool,
            ColumnStats::Str => ValueType::Str,
            ColumnStats::Bytes => ValueType::Bytes,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            ColumnStats::F64 {
                min,
                max,
                sum,
                first,
                last,
            } => {
                for v in [min, max, sum, first, last] {
                    out.extend_from_slice(&v.to_bits().to_le_bytes());
                }
            }
            ColumnStats::I64 {
                min,
                max,
                sum,
                first,
                last,
            } => {
                put_ivarint(out, *min);
                put_ivarint(out, *max);
                out.extend_from_slice(&sum.to_le_bytes());
                put_ivarint(out, *first);
                put_ivarint(out, *last);
            }
            ColumnStats::Bool { trues } => put_varint(out, *trues),
            ColumnStats::Str | ColumnStats::Bytes => {}
        }
    }

    fn decode(value_type: ValueType, r: &mut Reader<'_>) -> Result<ColumnStats, DecodeError> {
        Ok(match value_type {
            ValueType::F64 => ColumnStats::F64 {
                min: r.f64_le()?,
                max: r.f64_le()?,
                sum: r.f64_le()?,
                first: r.f64_le()?,
                last: r.f64_le()?,
            },
            ValueType::I64 => ColumnStats::I64 {
                min: r.ivarint()?,
                max: r.ivarint()?,
                sum: i128::from_le_bytes(r.array()?),
                first: r.ivarint()?,
                last: r.ivarint()?,
            },
            ValueType::Bool => ColumnStats::Bool { trues: r.varint()? },
            ValueType::Str => ColumnStats::Str,
            ValueType::Bytes => ColumnStats::Bytes,
        })
    }

    /// True when the stats equal these, with floats compared by bits.
    pub(crate) fn same_as(&self, other: &ColumnStats) -> bool {
        match (self, other) {
            (
                ColumnStats::F64 {
                    min: a,
                    max: b,
                    sum: c,
                    first: d,
                    last: e,
                },
                ColumnStats::F64 {
                    min: f,
                    max: g,
                    sum: h,
                    first: i,
                    last: j,
                },
            ) => [a, b, c, d, e].iter().zip([f, g, h, i, j]).all(|(x, y)| x.to_bits() == y.to_bits()),
            _ => self == other,
        }
    }
}

/// Metadata of one column of a block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColumnMeta {
    /// Index into the segment's field table.
    pub field: u32,
    /// Rows with a value.
    pub count: u32,
    pub stats: ColumnStats,
}

/// Metadata of one block, kept in the index.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct BlockMeta {
    /// Byte offset of the block in the file.
    pub offset: u64,
    /// Length including the trailing crc.
    pub len: u32,
    pub rows: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    pub columns: Vec<ColumnMeta>,
}

impl BlockMeta {
    /// Encodes the metadata of a block whose `offset` is relative to `base` (the block's
    /// series starts there in the file).
    pub(crate) fn encode_at(&self, base: u64, out: &mut Vec<u8>) {
        put_varint(out, base + self.offset);
        put_varint(out, self.len as u64);
        put_varint(out, self.rows as u64);
        put_ivarint(out, self.min_ts);
        put_varint(out, self.max_ts.wrapping_sub(self.min_ts) as u64);
        put_varint(out, self.columns.len() as u64);
        for c in &self.columns {
            put_varint(out, c.field as u64);
            put_varint(out, c.count as u64);
            c.stats.encode(out);
        }
    }

    /// Decodes block metadata; `field_types` gives each field's type.
    pub(crate) fn decode(r: &mut Reader<'_>, field_types: &[ValueType]) -> Result<BlockMeta, DecodeError> {
        let offset = r.varint()?;
        let len = u32::try_from(r.varint()?).map_err(|_| DecodeError("block length too large"))?;
        let rows = u32::try_from(r.varint()?).map_err(|_| DecodeError("block row count too large"))?;
        let min_ts = r.ivarint()?;
        let max_ts = min_ts.wrapping_add(r.varint()? as i64);
        if max_ts < min_ts || rows == 0 {
            return Err(DecodeError("block time range or row count invalid"));
        }
        let n = r.len(field_types.len())?;
        let mut columns = Vec::with_capacity(n);
        for _ in 0..n {
            let field = r.len(field_types.len().saturating_sub(1))? as u32;
            let count = u32::try_from(r.varint()?).map_err(|_| DecodeError("column count too large"))?;
            if count > rows {
                return Err(DecodeError("column has more values than rows"));
            }
            let stats = ColumnStats::decode(field_types[field as usize], r)?;
            columns.push(ColumnMeta { field, count, stats });
        }
        if columns.windows(2).any(|w| w[0].field >= w[1].field) {
            return Err(DecodeError("block columns not sorted by field"));
        }
        Ok(BlockMeta {
            offset,
            len,
            rows,
            min_ts,
            max_ts,
            columns,
        })
    }
}

/// One column to write: its field-table index and slots for rows `range` of a chunk.
pub(crate) struct ColumnInput<'a> {
    pub field: u32,
    pub column: &'a Column,
}

/// Encodes rows `start..end` of `chunk` (sorted by time) as a block, appending the bytes to
/// `out`; returns the block's metadata with `offset` relative to the start of `out`'s block.
pub(crate) fn encode_block(
    chunk: &Chunk,
    start: usize,
    end: usize,
    columns: &[ColumnInput<'_>],
    with_record_ids: bool,
    zstd_level: i32,
    out: &mut Vec<u8>,
) -> BlockMeta {
    let block_start = out.len();
    let rows = end - start;
    put_varint(out, rows as u64);
    out.push(BLOCK_COLUMN_CHECKSUMS | if with_record_ids { BLOCK_HAS_RECORD_IDS } else { 0 });
    let mut section = Vec::new();
    ints::encode(&chunk.timestamps[start..end], &mut section);
    put_bytes(out, &section);
    if with_record_ids {
        section.clear();
        let ids: Vec<i64> = chunk.record_ids[start..end].iter().map(|&r| r as i64).collect();
        ints::encode(&ids, &mut section);
        put_bytes(out, &section);
    }
    let mut metas = Vec::with_capacity(columns.len());
    // The column directory goes in the header; the columns' bytes follow it.
    let mut directory = Vec::new();
    let mut data = Vec::new();
    for input in columns {
        let c = input.column;
        let validity: &[bool] = if c.validity.is_empty() { &[] } else { &c.validity[start..end] };
        let present: Vec<usize> = if validity.is_empty() {
            (start..end).collect()
        } else {
            (start..end).filter(|&i| c.validity[i]).collect()
        };
        if present.is_empty() {
            continue;
        }
        let dense = c.values.gather(&present);
        let all_present = present.len() == rows;
        let stats = ColumnStats::of(&dense, &[]);
        let column_start = data.len();
        if !all_present {
            bools::encode(validity, &mut data);
        }
        let validity_len = data.len() - column_start;
        codec::encode_values(&dense, zstd_level, &mut data);
        put_varint(&mut directory, input.field as u64);
        put_varint(&mut directory, validity_len as u64);
        put_varint(&mut directory, (data.len() - column_start - validity_len) as u64);
        directory.extend_from_slice(&crc32fast::hash(&data[column_start..]).to_le_bytes());
        metas.push(ColumnMeta {
            field: input.field,
            count: present.len() as u32,
            stats,
        });
    }
    put_varint(out, metas.len() as u64);
    out.extend_from_slice(&directory);
    let header_len = out.len() - block_start;
    let header_crc = crc32fast::hash(&out[block_start..]);
    out.extend_from_slice(&data);
    // Header length and checksum last: a reader finds them from the block's length.
    out.extend_from_slice(&(header_len as u32).to_le_bytes());
    out.extend_from_slice(&header_crc.to_le_bytes());
    BlockMeta {
        offset: block_start as u64,
        len: (out.len() - block_start) as u32,
        rows: rows as u32,
        min_ts: chunk.timestamps[start],
        max_ts: chunk.timestamps[end - 1],
        columns: metas,
    }
}

/// How a block's bytes are checked, by the version of the segment holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockLayout {
    /// Segment versions 1 and 2: one crc32 of the whole block, at its end.
    WholeChecksum,
    /// Segment version 3 and later: a checksum of the header (which holds the column directory) and
    /// one per column, so a reader checks only what it decodes.
    ColumnChecksums,
}

impl BlockLayout {
    /// The layout of blocks in a segment of `version`.
    pub(crate) fn of_version(version: u32) -> BlockLayout {
        if version >= 3 {
            BlockLayout::ColumnChecksums
        } else {
            BlockLayout::WholeChecksum
        }
    }
}

/// Why a block failed to decode.
#[derive(Debug)]
pub(crate) enum BlockError {
    Checksum { stored: u32, computed: u32 },
    Malformed(DecodeError),
}

impl From<DecodeError> for BlockError {
    fn from(e: DecodeError) -> Self {
        BlockError::Malformed(e)
    }
}

/// Decodes a block (its bytes including the crc). `wanted(field)` selects columns to
/// decode; `fields` is the segment's field table.
///
/// With `keep_row`, for a reader that wants a few rows: the string and byte-string values
/// of rows `keep_row(timestamp, record id)` rejects come back empty (no allocation, no
/// UTF-8 check; the block's checksums are still verified). Every row is there, so the
/// chunk has the block's shape, but it must not be cached as the block.
pub(crate) fn decode_block(
    bytes: &[u8],
    meta: &BlockMeta,
    fields: &[(Arc<str>, ValueType)],
    wanted: &dyn Fn(u32) -> bool,
    layout: BlockLayout,
    keep_row: Option<&dyn Fn(i64, u64) -> bool>,
) -> Result<Chunk, BlockError> {
    // The bytes checked before anything is parsed: the whole block, or the header.
    let (header, data) = match layout {
        BlockLayout::WholeChecksum => {
            let (body, crc) = split_trailer(bytes, 4)?;
            let stored = u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]);
            let computed = crc32fast::hash(body);
            if stored != computed {
                return Err(BlockError::Checksum { stored, computed });
            }
            (body, None)
        }
        BlockLayout::ColumnChecksums => {
            let (body, trailer) = split_trailer(bytes, 8)?;
            let header_len = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]) as usize;
            let stored = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
            let (header, data) = body
                .split_at_checked(header_len)
                .ok_or(DecodeError("block header longer than the block"))?;
            let computed = crc32fast::hash(header);
            if stored != computed {
                return Err(BlockError::Checksum { stored, computed });
            }
            (header, Some(data))
        }
    };
    let mut r = Reader::new(header);
    let rows = r.len(meta.rows as usize)?;
    if rows != meta.rows as usize {
        return Err(DecodeError("block row count differs from the index").into());
    }
    let flags = r.u8()?;
    let known = match layout {
        BlockLayout::WholeChecksum => BLOCK_HAS_RECORD_IDS,
        BlockLayout::ColumnChecksums => BLOCK_HAS_RECORD_IDS | BLOCK_COLUMN_CHECKSUMS,
    };
    if flags & !known != 0 || (layout == BlockLayout::ColumnChecksums) != (flags & BLOCK_COLUMN_CHECKSUMS != 0) {
        return Err(DecodeError("unknown block flags").into());
    }
    let mut timestamps = Vec::with_capacity(rows);
    ints::decode(&mut Reader::new(r.prefixed()?), rows, &mut timestamps)?;
    if timestamps.first() != Some(&meta.min_ts) || timestamps.last() != Some(&meta.max_ts) || timestamps.windows(2).any(|w| w[0] > w[1]) {
        return Err(DecodeError("block timestamps disagree with the index or are unsorted").into());
    }
    let mut record_ids = Vec::new();
    if flags & BLOCK_HAS_RECORD_IDS != 0 {
        let mut ids = Vec::with_capacity(rows);
        ints::decode(&mut Reader::new(r.prefixed()?), rows, &mut ids)?;
        record_ids = ids.into_iter().map(|i| i as u64).collect();
    }
    let keep: Option<Vec<bool>> = keep_row.map(|keep_row| {
        (0..rows)
            .map(|row| keep_row(timestamps[row], record_ids.get(row).copied().unwrap_or(0)))
            .collect()
    });
    let n = r.len(fields.len())?;
    if n != meta.columns.len() {
        return Err(DecodeError("block column count differs from the index").into());
    }
    let mut data = data.map(Reader::new);
    let mut columns = Vec::new();
    for col_meta in &meta.columns {
        let field = r.varint()?;
        if field != col_meta.field as u64 {
            return Err(DecodeError("block column differs from the index").into());
        }
        // (validity, values, and in version 3 the column's bytes and their stored crc32).
        let (validity_bytes, value_bytes, checked) = match &mut data {
            None => (r.prefixed()?, r.prefixed()?, None),
            Some(data) => {
                let validity_len = r.len(data.remaining())?;
                let values_len = r.len(data.remaining())?;
                let stored = r.u32_le()?;
                let column = data.bytes(validity_len.checked_add(values_len).ok_or(DecodeError("length overflow"))?)?;
                let (validity, values) = column.split_at(validity_len);
                (validity, values, Some((column, stored)))
            }
        };
        if !wanted(col_meta.field) {
            continue;
        }
        if let Some((column, stored)) = checked {
            let computed = crc32fast::hash(column);
            if stored != computed {
                return Err(BlockError::Checksum { stored, computed });
            }
        }
        let (name, value_type) = &fields[col_meta.field as usize];
        let count = col_meta.count as usize;
        let validity = if validity_bytes.is_empty() {
            if count != rows {
                return Err(DecodeError("column without validity has missing values").into());
            }
            Vec::new()
        } else {
            let mut v = Vec::with_capacity(rows);
            let mut vr = Reader::new(validity_bytes);
            bools::decode(&mut vr, rows, &mut v)?;
            if !vr.is_empty() || v.iter().filter(|&&b| b).count() != count {
                return Err(DecodeError("column validity disagrees with its count").into());
            }
            v
        };
        // Which of the column's values (its valid rows) to keep.
        let keep_values: Option<Vec<bool>> = keep.as_ref().map(|keep| {
            if validity.is_empty() {
                keep.clone()
            } else {
                keep.iter().zip(&validity).filter(|(_, valid)| **valid).map(|(k, _)| *k).collect()
            }
        });
        let dense = codec::decode_values_selected(*value_type, value_bytes, count, keep_values.as_deref())?;
        let values = if validity.is_empty() { dense } else { expand(&dense, &validity) };
        columns.push(Column {
            name: name.clone(),
            values,
            validity,
        });
    }
    if !r.is_empty() || data.is_some_and(|d| !d.is_empty()) {
        return Err(DecodeError("trailing bytes in block").into());
    }
    Ok(Chunk {
        series: 0,
        timestamps,
        record_ids,
        columns,
    })
}

/// Splits a block into its body and its last `n` bytes.
fn split_trailer(bytes: &[u8], n: usize) -> Result<(&[u8], &[u8]), BlockError> {
    if bytes.len() < n {
        return Err(BlockError::Malformed(DecodeError("block shorter than its checksum")));
    }
    Ok(bytes.split_at(bytes.len() - n))
}

/// Spreads dense values over the valid slots of `validity`.
fn expand(dense: &ColumnValues, validity: &[bool]) -> ColumnValues {
    let mut out = ColumnValues::new(dense.value_type());
    let mut next = 0;
    for &valid in validity {
        if valid {
            out.push_from(dense, next);
            next += 1;
        } else {
            out.push_default();
        }
    }
    out
}

/// Checks that decoded columns have exactly the statistics the index claims.
pub(crate) fn check_stats(chunk: &Chunk, meta: &BlockMeta) -> Result<(), String> {
    for (column, col_meta) in chunk.columns.iter().zip(&meta.columns) {
        let stats = ColumnStats::of(&column.values, &column.validity);
        if stats.value_type() != col_meta.stats.value_type() || !stats.same_as(&col_meta.stats) {
            return Err(format!("statistics of column {} differ from its values", column.name));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A segment's field table.
    type Fields = Vec<(Arc<str>, ValueType)>;

    /// A block of two float columns, "a" (field 0) and "b" (field 1), 100 rows.
    fn two_columns() -> (Vec<u8>, BlockMeta, Fields) {
        let column = |name: &str, scale: f64| Column {
            name: Arc::from(name),
            values: ColumnValues::F64((0..100).map(|i| i as f64 * scale).collect()),
            validity: Vec::new(),
        };
        let chunk = Chunk {
            series: 0,
            timestamps: (0..100).map(|i| i * 10).collect(),
            record_ids: Vec::new(),
            columns: vec![column("a", 0.5), column("b", 3.25)],
        };
        let inputs = [
            ColumnInput {
                field: 0,
                column: &chunk.columns[0],
            },
            ColumnInput {
                field: 1,
                column: &chunk.columns[1],
            },
        ];
        let mut bytes = Vec::new();
        let meta = encode_block(&chunk, 0, 100, &inputs, false, 3, &mut bytes);
        (
            bytes,
            meta,
            vec![(Arc::from("a"), ValueType::F64), (Arc::from("b"), ValueType::F64)],
        )
    }

    /// Where column `field`'s bytes lie: after the header, in directory order.
    fn column_span(bytes: &[u8], field: usize) -> std::ops::Range<usize> {
        let trailer = &bytes[bytes.len() - 8..];
        let header_len = u32::from_le_bytes(trailer[..4].try_into().unwrap()) as usize;
        // Column 0 starts right after the header; column 1 ends right before the trailer.
        match field {
            0 => header_len..header_len + 1,
            _ => bytes.len() - 9..bytes.len() - 8,
        }
    }

    #[test]
    fn a_reader_checks_the_header_and_the_columns_it_decodes_and_no_other() {
        let (bytes, meta, fields) = two_columns();
        let only = |f: u32| move |x: u32| x == f;
        let decode = |b: &[u8], f: u32| decode_block(b, &meta, &fields, &only(f), BlockLayout::ColumnChecksums, None);
        let whole = decode_block(&bytes, &meta, &fields, &|_| true, BlockLayout::ColumnChecksums, None).unwrap();
        assert_eq!(whole.columns.len(), 2);
        assert_eq!(whole.timestamps.len(), 100);

        for (damaged, other) in [(0u32, 1u32), (1, 0)] {
            let mut bad = bytes.clone();
            let at = column_span(&bytes, damaged as usize).start;
            bad[at] ^= 0x10;
            let read = decode(&bad, other).unwrap();
            assert_eq!(
                read.columns[0].values, whole.columns[other as usize].values,
                "column {other} reads past damage in {damaged}"
            );
            assert!(
                matches!(decode(&bad, damaged), Err(BlockError::Checksum { .. })),
                "damage in column {damaged} is reported when it is read"
            );
        }
        // Damage in the header (the timestamps) or its trailer is reported whatever is read.
        for at in [2, bytes.len() - 1, bytes.len() - 6] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x01;
            assert!(
                matches!(decode(&bad, 0), Err(BlockError::Checksum { .. } | BlockError::Malformed(_))),
                "damage at {at} went unnoticed"
            );
        }
        // A block of the old layout is refused by the new reader, and the reverse.
        assert!(decode_block(&bytes, &meta, &fields, &|_| true, BlockLayout::WholeChecksum, None).is_err());
    }

    #[test]
    fn a_read_of_some_rows_leaves_the_other_rows_strings_empty() {
        // An event block (record ids) with a message in every row, a note in even rows, and
        // a number in every row.
        let rows = 50usize;
        let chunk = Chunk {
            series: 0,
            timestamps: (0..rows as i64).map(|i| i * 10).collect(),
            record_ids: (0..rows as u64).map(|i| 1000 + i).collect(),
            columns: vec![
                Column {
                    name: Arc::from("message"),
                    values: ColumnValues::Str((0..rows).map(|i| format!("line {i} of the log")).collect()),
                    validity: Vec::new(),
                },
                Column {
                    name: Arc::from("note"),
                    values: ColumnValues::Str(
                        (0..rows)
                            .map(|i| if i % 2 == 0 { format!("note {i}") } else { String::new() })
                            .collect(),
                    ),
                    validity: (0..rows).map(|i| i % 2 == 0).collect(),
                },
                Column {
                    name: Arc::from("n"),
                    values: ColumnValues::I64((0..rows as i64).collect()),
                    validity: Vec::new(),
                },
            ],
        };
        let inputs: Vec<ColumnInput<'_>> = chunk
            .columns
            .iter()
            .enumerate()
            .map(|(field, column)| ColumnInput {
                field: field as u32,
                column,
            })
            .collect();
        let fields: Fields = vec![
            (Arc::from("message"), ValueType::Str),
            (Arc::from("note"), ValueType::Str),
            (Arc::from("n"), ValueType::I64),
        ];
        let mut bytes = Vec::new();
        let meta = encode_block(&chunk, 0, rows, &inputs, true, 3, &mut bytes);
        let wanted = [(40i64, 1004u64), (70, 1007), (480, 1048)];
        let keep = |ts: i64, rid: u64| wanted.contains(&(ts, rid));
        let some = decode_block(&bytes, &meta, &fields, &|_| true, BlockLayout::ColumnChecksums, Some(&keep)).unwrap();
        let whole = decode_block(&bytes, &meta, &fields, &|_| true, BlockLayout::ColumnChecksums, None).unwrap();
        assert_eq!((&some.timestamps, &some.record_ids), (&whole.timestamps, &whole.record_ids));
        for (got, all) in some.columns.iter().zip(&whole.columns) {
            assert_eq!(got.validity, all.validity, "{}", got.name);
            for row in 0..rows {
                let kept = keep(whole.timestamps[row], whole.record_ids[row]);
                match (&got.values, &all.values) {
                    (ColumnValues::Str(g), ColumnValues::Str(a)) if !kept => assert_eq!(g[row], "", "{} row {row}", got.name),
                    (ColumnValues::Str(g), ColumnValues::Str(a)) => assert_eq!(g[row], a[row], "{} row {row}", got.name),
                    (g, a) => assert_eq!(g, a, "{}: other types decode whole", got.name),
                }
            }
        }
    }
}
