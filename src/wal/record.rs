//! WAL record payloads.
//!
//! A record of kind [`KIND_BATCH`] holds one written [`Batch`]: its first sequence number,
//! the series it created (so replay can rebuild the catalog), the global id of each of its
//! series, its field names, rows and values. The payload is a version byte followed by the
//! body in bincode 2's standard configuration (LEB-style varints, little endian); the
//! exact bytes are in `docs/FORMAT.md`.
//!
//! Decoding treats the payload as untrusted even though its checksum passed: strings are
//! borrowed from the payload (a length beyond it is an error, not an allocation) and every
//! element count is checked against the bytes left.

use crate::model::{Batch, BatchRow, FieldValue, SeriesId, SeriesKey, SeriesKind};
use bincode::de::read::SliceReader;
use bincode::de::{BorrowDecode, Decode, DecoderImpl};
use bincode::enc::{Encode, Encoder};
use bincode::error::{DecodeError, EncodeError};

/// Record kind of a batch.
pub(crate) const KIND_BATCH: u8 = 1;
/// Payload format version of batch records. Version 2 adds byte values (variant 4);
/// version 1 payloads are still read.
pub(crate) const BATCH_VERSION: u8 = 2;

fn config() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// A batch as the WAL holds it: rows refer to global series ids through `series_ids`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct WalBatch {
    pub first_seq: u64,
    pub new_series: Vec<(SeriesId, SeriesKey)>,
    /// Global id of each batch-local series.
    pub series_ids: Vec<SeriesId>,
    pub field_names: Vec<String>,
    pub rows: Vec<BatchRow>,
    pub values: Vec<(u32, FieldValue)>,
}

struct BatchRecord<'a> {
    first_seq: u64,
    new_series: &'a [(SeriesId, SeriesKey)],
    series_ids: &'a [SeriesId],
    batch: &'a Batch,
}

impl Encode for BatchRecord<'_> {
    fn encode<E: Encoder>(&self, e: &mut E) -> Result<(), EncodeError> {
        self.first_seq.encode(e)?;
        (self.new_series.len() as u64).encode(e)?;
        for (id, key) in self.new_series {
            id.encode(e)?;
            key.encode(e)?;
        }
        self.series_ids.encode(e)?;
        self.batch.field_names.encode(e)?;
        (self.batch.rows.len() as u64).encode(e)?;
        for row in &self.batch.rows {
            row.series.encode(e)?;
            row.timestamp.encode(e)?;
            row.value_count.encode(e)?;
        }
        for (field, value) in &self.batch.values {
            field.encode(e)?;
            value.encode(e)?;
        }
        Ok(())
    }
}

/// Appends the payload of a batch record (version byte + body) to `out`.
pub(crate) fn encode_batch(
    first_seq: u64,
    new_series: &[(SeriesId, SeriesKey)],
    series_ids: &[SeriesId],
    batch: &Batch,
    out: &mut Vec<u8>,
) {
    out.push(BATCH_VERSION);
    let record = BatchRecord {
        first_seq,
        new_series,
        series_ids,
        batch,
    };
    // Writing into a Vec cannot fail, and every value encodes (no maps, no unsized types).
    let _ = bincode::encode_into_std_write(&record, out, config());
}

type Dec<'a> = DecoderImpl<SliceReader<'a>, bincode::config::Configuration, ()>;

fn count(d: &mut Dec<'_>, max: usize, what: &str) -> Result<usize, String> {
    let n = u64::decode(d).map_err(|e| e.to_string())?;
    if n > max as u64 {
        return Err(format!("{what} count {n} exceeds the payload"));
    }
    Ok(n as usize)
}

fn text<'a>(d: &mut Dec<'a>) -> Result<&'a str, DecodeError> {
    <&str>::borrow_decode(d)
}

fn decode_key(d: &mut Dec<'_>, max: usize) -> Result<SeriesKey, String> {
    let kind = SeriesKind::decode(d).map_err(|e| e.to_string())?;
    let measurement = text(d).map_err(|e| e.to_string())?;
    let n = count(d, max, "tag")?;
    let mut tags = Vec::with_capacity(n);
    for _ in 0..n {
        let k = text(d).map_err(|e| e.to_string())?;
        let v = text(d).map_err(|e| e.to_string())?;
        tags.push((k, v));
    }
    SeriesKey::new(kind, measurement, tags).map_err(|e| e.to_string())
}

fn decode_value(d: &mut Dec<'_>, version: u8) -> Result<FieldValue, String> {
    let variant = u32::decode(d).map_err(|e| e.to_string())?;
    Ok(match variant {
        0 => FieldValue::F64(f64::decode(d).map_err(|e| e.to_string())?),
        1 => FieldValue::I64(i64::decode(d).map_err(|e| e.to_string())?),
        2 => FieldValue::Bool(bool::decode(d).map_err(|e| e.to_string())?),
        3 => FieldValue::Str(text(d).map_err(|e| e.to_string())?.to_owned()),
        4 if version >= 2 => FieldValue::Bytes(<&[u8]>::borrow_decode(d).map_err(|e| e.to_string())?.to_owned()),
        _ => return Err(format!("unknown value variant {variant}")),
    })
}

/// Decodes a batch payload, checking every cross-reference.
pub(crate) fn decode_batch(payload: &[u8]) -> Result<WalBatch, String> {
    let (&version, body) = payload.split_first().ok_or("empty payload")?;
    if version != BATCH_VERSION && version != 1 {
        return Err(format!("unsupported batch payload version {version}"));
    }
    let max = body.len();
    let d = &mut DecoderImpl::new(SliceReader::new(body), config(), ());
    let first_seq = u64::decode(d).map_err(|e| e.to_string())?;
    let n = count(d, max, "new series")?;
    let mut new_series = Vec::with_capacity(n);
    for _ in 0..n {
        let id = u32::decode(d).map_err(|e| e.to_string())?;
        new_series.push((id, decode_key(d, max)?));
    }
    let n = count(d, max, "series id")?;
    let mut series_ids = Vec::with_capacity(n);
    for _ in 0..n {
        series_ids.push(u32::decode(d).map_err(|e| e.to_string())?);
    }
    let n = count(d, max, "field name")?;
    let mut field_names = Vec::with_capacity(n);
    for _ in 0..n {
        field_names.push(text(d).map_err(|e| e.to_string())?.to_owned());
    }
    let n = count(d, max, "row")?;
    let mut rows = Vec::with_capacity(n);
    let mut total_values = 0u64;
    for _ in 0..n {
        let series = u32::decode(d).map_err(|e| e.to_string())?;
        let timestamp = i64::decode(d).map_err(|e| e.to_string())?;
        let value_count = u32::decode(d).map_err(|e| e.to_string())?;
        if series as usize >= series_ids.len() {
            return Err(format!("row refers to batch series {series} of {}", series_ids.len()));
        }
        if value_count == 0 {
            return Err("row without values".into());
        }
        rows.push(BatchRow {
            series,
            timestamp,
            first_value: total_values as u32,
            value_count,
        });
        total_values += value_count as u64;
        if total_values > max as u64 {
            return Err("value count exceeds the payload".into());
        }
    }
    let mut values = Vec::with_capacity(total_values as usize);
    for _ in 0..total_values {
        let field = u32::decode(d).map_err(|e| e.to_string())?;
        if field as usize >= field_names.len() {
            return Err(format!("value refers to field {field} of {}", field_names.len()));
        }
        values.push((field, decode_value(d, version)?));
    }
    if has_trailing_bytes(d) {
        return Err("trailing bytes after the batch".into());
    }
    Ok(WalBatch {
        first_seq,
        new_series,
        series_ids,
        field_names,
        rows,
        values,
    })
}

fn has_trailing_bytes(d: &mut Dec<'_>) -> bool {
    use bincode::de::BorrowDecoder;
    use bincode::de::read::BorrowReader;
    d.borrow_reader().take_bytes(1).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Batch, Vec<(SeriesId, SeriesKey)>, Vec<SeriesId>) {
        let a = SeriesKey::new(SeriesKind::Metric, "cpu", [("host", "a")]).unwrap();
        let b = SeriesKey::new(SeriesKind::Log, "log", [("level", "ERROR")]).unwrap();
        let mut batch = Batch::new();
        batch
            .add_row(&a, -5, [("x", FieldValue::F64(f64::NAN)), ("n", FieldValue::I64(i64::MIN))])
            .unwrap();
        batch
            .add_row(
                &b,
                i64::MAX,
                [("message", FieldValue::Str("disk ü full".into())), ("ok", FieldValue::Bool(false))],
            )
            .unwrap();
        batch.add_row(&a, 7, [("x", FieldValue::F64(-0.0))]).unwrap();
        (batch, vec![(7, b.clone())], vec![3, 7])
    }

    #[test]
    fn batches_round_trip() {
        let (batch, new_series, ids) = sample();
        let mut out = Vec::new();
        encode_batch(42, &new_series, &ids, &batch, &mut out);
        let decoded = decode_batch(&out).unwrap();
        assert_eq!(decoded.first_seq, 42);
        assert_eq!(decoded.new_series, new_series);
        assert_eq!(decoded.series_ids, ids);
        assert_eq!(decoded.field_names, batch.field_names);
        assert_eq!(decoded.rows, batch.rows);
        assert_eq!(decoded.values, batch.values);
    }

    #[test]
    fn every_truncation_and_many_flips_are_rejected_or_decode_consistently() {
        let (batch, new_series, ids) = sample();
        let mut out = Vec::new();
        encode_batch(1, &new_series, &ids, &batch, &mut out);
        for cut in 0..out.len() {
            assert!(decode_batch(&out[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..out.len() {
            for bit in 0..8 {
                let mut damaged = out.clone();
                damaged[i] ^= 1 << bit;
                // Must not panic; a decoded batch must still be internally consistent.
                if let Ok(b) = decode_batch(&damaged) {
                    assert!(b.rows.iter().all(|r| (r.series as usize) < b.series_ids.len()));
                }
            }
        }
    }
}
