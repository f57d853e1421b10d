//! Entry points into private decoders and encoders for fuzz targets and benchmarks
//! (feature `internals`). Not part of the stable API: names and signatures change freely.
//!
//! Every `decode_*` function takes arbitrary bytes and must return (never panic, never
//! allocate without bound); fuzz targets check exactly that, plus round trips.

use crate::chunk::{Chunk, Column, ColumnValues};
use crate::codec::{self, bytes::Reader};
use crate::manifest::{Manifest, SegmentMeta};
use crate::model::{SeriesKind, ValueType};
use crate::segment::{BlockMeta, SegmentReader};
use crate::time::Month;
use std::path::Path;
use std::sync::Arc;

pub mod fuzz;

/// Encodes integers with the integer column codec.
pub fn encode_i64s(values: &[i64]) -> Vec<u8> {
    let mut out = Vec::new();
    codec::ints::encode(values, &mut out);
    out
}

/// Decodes `n` integers; `None` when the bytes are not a valid encoding of exactly `n`.
pub fn decode_i64s(bytes: &[u8], n: usize) -> Option<Vec<i64>> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    codec::ints::decode(&mut r, n, &mut out).ok()?;
    r.is_empty().then_some(out)
}

/// Encodes floats with the float column codec.
pub fn encode_f64s(values: &[f64]) -> Vec<u8> {
    let mut out = Vec::new();
    codec::floats::encode(values, &mut out);
    out
}

/// Decodes `n` floats.
pub fn decode_f64s(bytes: &[u8], n: usize) -> Option<Vec<f64>> {
    match codec::decode_values(ValueType::F64, bytes, n).ok()? {
        ColumnValues::F64(v) => Some(v),
        _ => None,
    }
}

/// Packs floats as the head does while they wait for a flush: a page per
/// `codec::pages::PAGE_ROWS` values.
pub fn encode_head_pages(values: &[f64]) -> Vec<Vec<u8>> {
    let (mut mantissas, mut page) = (Vec::new(), Vec::new());
    values
        .chunks(codec::pages::PAGE_ROWS)
        .map(|part| {
            codec::pages::encode(&ColumnValues::F64(part.to_vec()), &mut mantissas, &mut page);
            page.clone()
        })
        .collect()
}

/// Unpacks what [`encode_head_pages`] packed from `n` values.
pub fn decode_head_pages(pages: &[Vec<u8>], n: usize) -> Vec<f64> {
    let mut out = ColumnValues::F64(Vec::with_capacity(n));
    for (i, page) in pages.iter().enumerate() {
        let rows = (n - i * codec::pages::PAGE_ROWS).min(codec::pages::PAGE_ROWS);
        codec::pages::decode(page, rows, &mut out);
    }
    match out {
        ColumnValues::F64(v) => v,
        _ => Vec::new(),
    }
}

/// Encodes booleans.
pub fn encode_bools(values: &[bool]) -> Vec<u8> {
    let mut out = Vec::new();
    codec::bools::encode(values, &mut out);
    out
}

/// Decodes `n` booleans.
pub fn decode_bools(bytes: &[u8], n: usize) -> Option<Vec<bool>> {
    match codec::decode_values(ValueType::Bool, bytes, n).ok()? {
        ColumnValues::Bool(v) => Some(v),
        _ => None,
    }
}

/// Encodes strings.
pub fn encode_strings(values: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    codec::strings::encode(values, 3, &mut out);
    out
}

/// Decodes `n` strings.
pub fn decode_strings(bytes: &[u8], n: usize) -> Option<Vec<String>> {
    match codec::decode_values(ValueType::Str, bytes, n).ok()? {
        ColumnValues::Str(v) => Some(v),
        _ => None,
    }
}

/// Decodes `n` strings, keeping those `keep` marks and leaving the others empty (a
/// search's read of a few rows).
pub fn decode_strings_selected(bytes: &[u8], n: usize, keep: &[bool]) -> Option<Vec<String>> {
    match codec::decode_values_selected(ValueType::Str, bytes, n, Some(keep)).ok()? {
        ColumnValues::Str(v) => Some(v),
        _ => None,
    }
}

/// Decodes a WAL batch payload (version byte + body); returns its row count.
pub fn decode_wal_payload(bytes: &[u8]) -> Option<usize> {
    crate::wal::decode_batch(bytes).ok().map(|b| b.rows.len())
}

/// Decodes a `COMMITS` file; returns its entry count. An accepted file re-encodes to one
/// that decodes to the same entries.
pub fn decode_commit_index(bytes: &[u8]) -> Option<usize> {
    let index = crate::commit_index::CommitIndex::decode(Path::new("COMMITS"), bytes).ok()?;
    let again = crate::commit_index::CommitIndex::decode(Path::new("COMMITS"), &index.encode(u64::MAX));
    assert_eq!(again.map(|a| a.len()).ok(), Some(index.len()), "a decoded commit index re-encodes");
    Some(index.len())
}

/// Decodes a WAL batch payload and finds its commit rows as recovery does; returns how
/// many it holds. A series the payload creates is a commit series when its key says so; one
/// it only refers to is taken as one (recovery would look it up in the catalog).
pub fn decode_commit_rows(bytes: &[u8]) -> Option<usize> {
    let batch = crate::wal::decode_batch(bytes).ok()?;
    let is_commit = |i: usize| {
        batch
            .new_series
            .iter()
            .find(|(new, _)| *new == batch.series_ids[i])
            .is_none_or(|(_, key)| key.holds_commits())
    };
    crate::model::commit::commit_rows(batch.series_ids.len(), is_commit, &batch.field_names, &batch.rows, &batch.values)
        .ok()
        .map(|rows| rows.len())
}

/// Walks the framed records of a WAL or catalog body; returns how many are valid before
/// the first bad one or the end.
pub fn count_frames(bytes: &[u8]) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while let crate::io::frame::Frame::Record { next, .. } = crate::io::frame::read(bytes, pos) {
        pos = next;
        n += 1;
    }
    n
}

/// Decodes every framed record of a WAL file's body (after its 24-byte header) as a batch
/// payload; returns how many decoded.
pub fn decode_wal_file(bytes: &[u8]) -> usize {
    let body = bytes.get(crate::wal::FILE_HEADER_LEN as usize..).unwrap_or_default();
    let mut pos = 0;
    let mut n = 0;
    while let crate::io::frame::Frame::Record { payload, next, .. } = crate::io::frame::read(body, pos) {
        if crate::wal::decode_batch(payload).is_ok() {
            n += 1;
        }
        pos = next;
    }
    n
}

/// Decodes every framed record of a catalog file's body (after its 16-byte header) as a
/// series definition; returns how many decoded.
pub fn decode_catalog_file(bytes: &[u8]) -> usize {
    let body = bytes.get(16..).unwrap_or_default();
    let mut pos = 0;
    let mut n = 0;
    while let crate::io::frame::Frame::Record { payload, next, .. } = crate::io::frame::read(body, pos) {
        if crate::catalog::decode_key(payload).is_ok() {
            n += 1;
        }
        pos = next;
    }
    n
}

/// Frames a payload as the WAL and catalog do.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    crate::io::frame::append(&mut out, kind, payload);
    out
}

/// Decodes a manifest; returns its segment count.
pub fn decode_manifest(bytes: &[u8]) -> Option<usize> {
    Manifest::decode(Path::new("MANIFEST"), bytes).ok().map(|m| m.segments.len())
}

fn le_u64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

fn le_u32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Opens a segment from bytes, taking the manifest entry from the file's own header and
/// footer, then verifies it completely; returns (rows, points) when everything checks out.
pub fn open_and_verify_segment(bytes: Vec<u8>) -> Option<(u64, u64)> {
    let len = bytes.len();
    let footer = len.checked_sub(crate::segment::FOOTER_LEN)?;
    let month = Month::from_index(le_u32(&bytes, 12)? as i32)?;
    let meta = SegmentMeta {
        month,
        generation: le_u64(&bytes, 16)?,
        file_len: len as u64,
        file_crc: le_u32(&bytes, footer + 60)?,
        min_ts: le_u64(&bytes, footer + 40)? as i64,
        max_ts: le_u64(&bytes, footer + 48)? as i64,
        rows: le_u64(&bytes, footer + 24)?,
        points: le_u64(&bytes, footer + 32)?,
        series: le_u32(&bytes, footer + 16)?,
        min_seq: 0,
        max_seq: 0,
        level: 0,
        tier: crate::manifest::Resolution::Detail,
    };
    let reader = SegmentReader::from_bytes(Path::new("fuzz.seg"), Box::new(bytes), &meta).ok()?;
    reader.verify().ok()
}

/// An encoded block of one float column, for decode benchmarks.
pub struct EncodedBlock {
    bytes: Vec<u8>,
    meta: BlockMeta,
    fields: Vec<(Arc<str>, ValueType)>,
}

/// Encodes timestamps and one float column as a segment block.
pub fn encode_block(timestamps: &[i64], values: &[f64]) -> EncodedBlock {
    let chunk = Chunk {
        series: 0,
        timestamps: timestamps.to_vec(),
        record_ids: Vec::new(),
        columns: vec![Column {
            name: Arc::from("v"),
            values: ColumnValues::F64(values.to_vec()),
            validity: Vec::new(),
        }],
    };
    let inputs = [crate::segment::ColumnInput {
        field: 0,
        column: &chunk.columns[0],
    }];
    let mut bytes = Vec::new();
    let meta = crate::segment::encode_block(&chunk, 0, chunk.len(), &inputs, SeriesKind::Metric.is_event(), 3, &mut bytes);
    EncodedBlock {
        bytes,
        meta,
        fields: vec![(Arc::from("v"), ValueType::F64)],
    }
}

impl EncodedBlock {
    /// Encoded size in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True when empty (never, for a block of at least one row).
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Verifies and decodes the block; returns its row count.
    pub fn decode(&self) -> Option<usize> {
        crate::segment::decode_block(
            &self.bytes,
            &self.meta,
            &self.fields,
            &|_| true,
            crate::segment::BlockLayout::ColumnChecksums,
            None,
        )
        .ok()
        .map(|c| c.len())
    }
}

/// A WAL file that takes batch records, for append benchmarks.
pub struct WalAppender {
    writer: crate::wal::WalWriter,
    next_seq: u64,
}

impl WalAppender {
    /// Creates WAL file 1 in `dir` (which must not hold one).
    pub fn create(dir: &Path) -> crate::Result<WalAppender> {
        Ok(WalAppender {
            writer: crate::wal::WalWriter::create(&crate::io::Fs::default(), dir, 1)?,
            next_seq: 1,
        })
    }

    /// Encodes, frames and appends `batch` as the engine does (series ids 0..); returns the
    /// record's bytes. Not durable until [`WalAppender::sync`].
    pub fn append(&mut self, batch: &crate::Batch) -> crate::Result<usize> {
        let ids: Vec<crate::SeriesId> = (0..batch.series.len() as crate::SeriesId).collect();
        let bytes = self
            .writer
            .append_batch(self.next_seq, &[], &ids, batch, usize::MAX)
            .map_err(|failed| failed.error)?;
        self.next_seq += batch.len() as u64;
        Ok(bytes as usize)
    }

    /// Makes everything appended durable (fdatasync).
    pub fn sync(&self) -> crate::Result<()> {
        self.writer.sync()
    }
}

/// The roaring tag index over a set of series, for selection benchmarks.
pub struct TagIndexProbe(crate::index::TagIndex);

impl TagIndexProbe {
    /// Indexes `keys` with ids 0, 1, ...
    pub fn new(keys: &[crate::SeriesKey]) -> TagIndexProbe {
        let mut index = crate::index::TagIndex::default();
        for (id, key) in keys.iter().enumerate() {
            index.insert(id as crate::SeriesId, key);
        }
        TagIndexProbe(index)
    }

    /// How many series the predicate selects.
    pub fn select(&self, predicate: &crate::TagPredicate) -> crate::Result<u64> {
        Ok(self.0.select(None, None, Some(predicate))?.len())
    }
}

/// Reads an archive from bytes as a restore would before writing anything: index, names,
/// bounds, and every entry decompressed and checked. Returns the entry count.
pub fn check_archive(bytes: &[u8]) -> Option<usize> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // The reader works on files (archives are large): go through a private temporary one.
    let path = std::env::temp_dir().join(format!(
        "annals-archive-check-{}-{}.annarc",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::write(&path, bytes).ok()?;
    let result = crate::lifecycle::archive::read_index(&path).and_then(|index| {
        crate::lifecycle::archive::verify(&path, &index, None, None)?;
        Ok(index.entries.len())
    });
    let _ = std::fs::remove_file(&path);
    result.ok()
}

/// Decodes a quantile sketch (the binary form inside a summary row's `.sketch` column); on
/// success re-encodes it and answers a quantile, which must not panic. Returns the count.
pub fn check_quantile_sketch(bytes: &[u8]) -> Option<u64> {
    let sketch = crate::rollup::sketch::QuantileSketch::from_bytes(bytes).ok()?;
    let again = crate::rollup::sketch::QuantileSketch::from_bytes(&sketch.to_bytes()).ok()?;
    assert_eq!(again, sketch, "a decoded sketch re-encodes to itself");
    let count = sketch.count();
    if count > 0 {
        sketch.value_at_rank(count / 2)?;
    }
    Some(count)
}
