//! Writing a segment: fields table first, series encoded (possibly in parallel) into
//! blocks, then streamed into a temporary file that is fsync'd and renamed into place.

use super::block::{self, BlockMeta, ColumnInput};
use super::{DIRECTORY_ENTRY_LEN, FOOTER_LEN};
use crate::chunk::Chunk;
use crate::codec::bytes::put_varint;
use crate::error::{Error, Result};
use crate::files::FileKind;
use crate::io::{self, FileWriter, Fs};
use crate::manifest::{SegmentMeta, segment_path};
use crate::model::{SeriesId, SeriesKind, ValueType};
use crate::time::Month;
use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The blocks of one series, encoded but not yet placed in a file.
pub(crate) struct EncodedSeries {
    id: SeriesId,
    kind: SeriesKind,
    bytes: Vec<u8>,
    /// Offsets relative to the start of `bytes`.
    blocks: Vec<BlockMeta>,
    rows: u64,
    points: u64,
    min_seq: u64,
}

/// The field table of a segment: every (name, type) of its columns, sorted.
#[derive(Debug, Default, Clone)]
pub(crate) struct FieldTable {
    fields: Vec<(Arc<str>, ValueType)>,
    index: BTreeMap<(Arc<str>, ValueType), u32>,
}

impl FieldTable {
    /// The table of the given columns (duplicates collapse).
    pub(crate) fn from_fields(fields: impl IntoIterator<Item = (Arc<str>, ValueType)>) -> FieldTable {
        let mut index: BTreeMap<(Arc<str>, ValueType), u32> = fields.into_iter().map(|f| (f, 0)).collect();
        let fields: Vec<_> = index.keys().cloned().collect();
        for (i, v) in index.values_mut().enumerate() {
            *v = i as u32;
        }
        FieldTable { fields, index }
    }

    fn id(&self, name: &Arc<str>, value_type: ValueType) -> Option<u32> {
        self.index.get(&(name.clone(), value_type)).copied()
    }
}

/// Encodes one series' rows (sorted by time) into blocks within `limits`.
pub(crate) fn encode_series(
    id: SeriesId,
    kind: SeriesKind,
    chunk: &Chunk,
    fields: &FieldTable,
    limits: BlockLimits,
    zstd_level: i32,
) -> EncodedSeries {
    let mut encoded = EncodedSeries::new(id, kind);
    encoded.add_blocks(chunk, fields, limits, zstd_level);
    encoded
}

/// How large a block may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlockLimits {
    /// Rows at most.
    pub max_rows: usize,
    /// Time from a block's first row to its last, about at most (`i64::MAX`: unbounded).
    pub max_span_ns: i64,
}

/// Below this many rows a block is not cut further for its span: a block carries a header
/// and per-column tables, which a few rows would not pay for.
const SPAN_CUT_MIN_ROWS: usize = 1024;

impl BlockLimits {
    /// Into how many blocks of equal row counts `rows` rows spanning `first..=last` are
    /// cut: enough for `max_rows`, and for `max_span_ns` while blocks keep at least
    /// [`SPAN_CUT_MIN_ROWS`] rows.
    fn block_count(self, rows: usize, first: i64, last: i64) -> usize {
        let by_rows = rows.div_ceil(self.max_rows.max(1));
        let span = (last as i128 - first as i128).max(0);
        let by_span = (span / self.max_span_ns.max(1) as i128 + 1).min(usize::MAX as i128) as usize;
        let span_cap = (rows / SPAN_CUT_MIN_ROWS).max(1);
        by_rows.max(by_span.min(span_cap))
    }
}

impl EncodedSeries {
    /// A series with no blocks yet.
    pub(crate) fn new(id: SeriesId, kind: SeriesKind) -> EncodedSeries {
        EncodedSeries {
            id,
            kind,
            bytes: Vec::new(),
            blocks: Vec::new(),
            rows: 0,
            points: 0,
            min_seq: u64::MAX,
        }
    }

    /// Appends `chunk`'s rows (all later than the rows already added) as blocks within
    /// `limits`, of equal row counts so no block is a tiny remainder.
    pub(crate) fn add_blocks(&mut self, chunk: &Chunk, fields: &FieldTable, limits: BlockLimits, zstd_level: i32) {
        let mut columns: Vec<ColumnInput<'_>> = chunk
            .columns
            .iter()
            .filter_map(|c| fields.id(&c.name, c.value_type()).map(|field| ColumnInput { field, column: c }))
            .collect();
        columns.sort_by_key(|c| c.field);
        let rows = chunk.len();
        if rows == 0 {
            return;
        }
        let block_count = limits.block_count(rows, chunk.timestamps[0], chunk.timestamps[rows - 1]);
        for b in 0..block_count {
            let start = rows * b / block_count;
            let end = rows * (b + 1) / block_count;
            let meta = block::encode_block(chunk, start, end, &columns, self.kind.is_event(), zstd_level, &mut self.bytes);
            self.points += meta.columns.iter().map(|c| c.count as u64).sum::<u64>();
            self.blocks.push(meta);
        }
        self.rows += rows as u64;
        if let Some(min) = chunk.record_ids.iter().copied().min() {
            self.min_seq = self.min_seq.min(min);
        }
    }

    /// Rows added so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }
}

/// A segment being written.
pub(crate) struct SegmentWriter {
    path: PathBuf,
    tmp_path: PathBuf,
    file: BufWriter<FileWriter>,
    fs: Fs,
    hasher: crc32fast::Hasher,
    offset: u64,
    month: Month,
    generation: u64,
    fields: FieldTable,
    /// The index as it grows: the field table, then each appended series' entry (kind and
    /// block metadata). Encoded at append so a segment of millions of series holds bytes
    /// here, not a `BlockMeta` tree per series.
    index: Vec<u8>,
    /// One directory entry per appended series: id and offset of its entry in `index`.
    directory: Vec<u8>,
    series: u32,
    last_id: Option<SeriesId>,
    rows: u64,
    points: u64,
    min_ts: i64,
    max_ts: i64,
    min_seq: u64,
}

/// A segment that is durable under its final name (but not yet in the manifest).
#[derive(Debug)]
pub(crate) struct WrittenSegment {
    pub meta: SegmentMeta,
    pub path: PathBuf,
}

impl SegmentWriter {
    /// Starts `<data>/<month>/<generation>.seg` under a temporary name.
    pub(crate) fn create(fs: &Fs, data_dir: &Path, month: Month, generation: u64, fields: FieldTable) -> Result<SegmentWriter> {
        let path = segment_path(data_dir, month, generation);
        if let Some(dir) = path.parent() {
            fs.create_dir_durable(dir)?;
        }
        let tmp_path = io::temporary_sibling(&path);
        fs.remove_file(&tmp_path)?;
        let file = fs.create_new(&tmp_path)?;
        let mut index = Vec::new();
        put_varint(&mut index, fields.fields.len() as u64);
        for (name, value_type) in &fields.fields {
            index.push(*value_type as u8);
            put_varint(&mut index, name.len() as u64);
            index.extend_from_slice(name.as_bytes());
        }
        let mut w = SegmentWriter {
            path,
            tmp_path,
            file: BufWriter::with_capacity(1 << 20, file),
            fs: fs.clone(),
            hasher: crc32fast::Hasher::new(),
            offset: 0,
            month,
            generation,
            fields,
            index,
            directory: Vec::new(),
            series: 0,
            last_id: None,
            rows: 0,
            points: 0,
            min_ts: i64::MAX,
            max_ts: i64::MIN,
            min_seq: u64::MAX,
        };
        let mut fields = Vec::with_capacity(16);
        fields.extend_from_slice(&month.index().to_le_bytes());
        fields.extend_from_slice(&generation.to_le_bytes());
        fields.extend_from_slice(&0u32.to_le_bytes());
        w.write(&FileKind::Segment.header(&fields))?;
        Ok(w)
    }

    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file.write_all(bytes).map_err(|e| Error::io("write", &self.tmp_path, e))?;
        self.hasher.update(bytes);
        self.offset += bytes.len() as u64;
        Ok(())
    }

    /// Appends one encoded series; series must come in ascending id order.
    pub(crate) fn append(&mut self, encoded: EncodedSeries) -> Result<()> {
        debug_assert!(self.last_id.is_none_or(|id| id < encoded.id));
        if encoded.blocks.is_empty() {
            return Ok(());
        }
        let entry_offset =
            u32::try_from(self.index.len()).map_err(|_| Error::invalid("segment index exceeds 4 GiB; lower the head size"))?;
        let base = self.offset;
        self.write(&encoded.bytes)?;
        self.directory.extend_from_slice(&encoded.id.to_le_bytes());
        self.directory.extend_from_slice(&entry_offset.to_le_bytes());
        self.index.push(encoded.kind as u8);
        put_varint(&mut self.index, encoded.blocks.len() as u64);
        for block in &encoded.blocks {
            self.min_ts = self.min_ts.min(block.min_ts);
            self.max_ts = self.max_ts.max(block.max_ts);
            block.encode_at(base, &mut self.index);
        }
        self.rows += encoded.rows;
        self.points += encoded.points;
        self.min_seq = self.min_seq.min(encoded.min_seq);
        self.series += 1;
        self.last_id = Some(encoded.id);
        Ok(())
    }

    /// Writes index and footer, fsyncs, and renames into place (fsyncing the directory).
    /// `max_seq` is the highest sequence number the producing flush covered.
    pub(crate) fn finish(self, max_seq: u64) -> Result<WrittenSegment> {
        self.finish_as(Lineage {
            min_seq: None,
            max_seq,
            level: 0,
            tier: crate::manifest::Resolution::Detail,
        })
    }

    /// Removes the temporary file of a segment that will not be finished.
    pub(crate) fn abandon(self) -> Result<()> {
        let tmp = self.tmp_path.clone();
        drop(self.file);
        self.fs.remove_file(&tmp)
    }

    /// [`SegmentWriter::finish`] for a segment that replaces others (compaction): the
    /// sequence range and level it inherits.
    pub(crate) fn finish_as(mut self, lineage: Lineage) -> Result<WrittenSegment> {
        let max_seq = lineage.max_seq;
        let index_start = self.offset;
        let mut index = std::mem::take(&mut self.index);
        let directory = std::mem::take(&mut self.directory);
        debug_assert_eq!(directory.len(), self.series as usize * DIRECTORY_ENTRY_LEN);
        if index.len() > u32::MAX as usize {
            return Err(Error::invalid("segment index exceeds 4 GiB; lower the head size"));
        }
        let directory_start = index_start + index.len() as u64;
        index.extend_from_slice(&directory);
        let index_crc = crc32fast::hash(&index);
        self.write(&index)?;
        let file_crc = self.hasher.clone().finalize();

        let mut footer = Vec::with_capacity(FOOTER_LEN);
        footer.extend_from_slice(&index_start.to_le_bytes());
        footer.extend_from_slice(&directory_start.to_le_bytes());
        footer.extend_from_slice(&self.series.to_le_bytes());
        footer.extend_from_slice(&(self.fields.fields.len() as u32).to_le_bytes());
        footer.extend_from_slice(&self.rows.to_le_bytes());
        footer.extend_from_slice(&self.points.to_le_bytes());
        footer.extend_from_slice(&self.min_ts.to_le_bytes());
        footer.extend_from_slice(&self.max_ts.to_le_bytes());
        footer.extend_from_slice(&index_crc.to_le_bytes());
        footer.extend_from_slice(&file_crc.to_le_bytes());
        let footer_crc = crc32fast::hash(&footer);
        footer.extend_from_slice(&footer_crc.to_le_bytes());
        footer.extend_from_slice(FileKind::Segment.magic());
        debug_assert_eq!(footer.len(), FOOTER_LEN);
        self.write(&footer)?;

        let file = self
            .file
            .into_inner()
            .map_err(|e| Error::io("write", &self.tmp_path, e.into_error()))?;
        file.sync_all()?;
        drop(file);
        self.fs.rename_durable(&self.tmp_path, &self.path)?;
        Ok(WrittenSegment {
            meta: SegmentMeta {
                month: self.month,
                generation: self.generation,
                file_len: self.offset,
                file_crc,
                min_ts: self.min_ts,
                max_ts: self.max_ts,
                rows: self.rows,
                points: self.points,
                series: self.series,
                min_seq: lineage.min_seq.unwrap_or(self.min_seq),
                max_seq,
                level: lineage.level,
                tier: lineage.tier,
            },
            path: self.path,
        })
    }
}

/// What a segment inherits from the segments it replaces.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lineage {
    /// Lowest sequence number of the inputs (metric rows carry none of their own).
    pub min_seq: Option<u64>,
    /// Highest sequence number any input covered: the version of every row.
    pub max_seq: u64,
    /// 0 for a flush, above the inputs' levels for a compaction.
    pub level: u8,
    /// Detail or a summary tier (the writer must have been created in that tier's
    /// directory).
    pub tier: crate::manifest::Resolution,
}

/// How segments are encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EncodeOptions {
    pub block_max_rows: usize,
    /// See [`crate::Options::block_max_span`].
    pub block_max_span_ns: i64,
    pub zstd_level: i32,
    /// The zstd level of commit series' columns.
    pub commit_zstd_level: i32,
    /// Threads encoding series in parallel.
    pub threads: usize,
}

impl EncodeOptions {
    /// The encoding the store's options ask for.
    pub(crate) fn of(options: &crate::options::Options) -> EncodeOptions {
        EncodeOptions {
            block_max_rows: options.block_max_rows,
            block_max_span_ns: i64::try_from(options.block_max_span.as_nanos()).unwrap_or(i64::MAX),
            zstd_level: options.zstd_level,
            commit_zstd_level: options.commit_zstd_level,
            threads: options.flush_threads,
        }
    }

    /// The block limits of a series of `kind`: numeric samples are bounded in time too.
    pub(crate) fn block_limits(&self, kind: SeriesKind) -> BlockLimits {
        let max_span_ns = match kind {
            SeriesKind::Metric | SeriesKind::Performance => self.block_max_span_ns,
            SeriesKind::Log | SeriesKind::Alert | SeriesKind::Commit => i64::MAX,
        };
        BlockLimits {
            max_rows: self.block_max_rows.max(1),
            max_span_ns,
        }
    }

    /// The zstd level of a series of `kind`.
    pub(crate) fn zstd_level_for(&self, kind: SeriesKind) -> i32 {
        match kind {
            SeriesKind::Commit => self.commit_zstd_level,
            _ => self.zstd_level,
        }
    }
}

/// Most series encoded per round of [`write_segment`]: a round starts a thread per
/// core, which a million small series should not pay for a few hundred at a time.
const ENCODE_WINDOW_SERIES: usize = 4096;

/// Encoded bytes a round of [`write_segment`] aims to hold. Rounds are sized from the
/// bytes per series of the round before: a head of a thousand W1 series holding a few
/// hours each encodes to 40 MB, which a window of every series would hold at once, in
/// vectors that doubled to up to twice that.
const ENCODE_WINDOW_BYTES: usize = 8 << 20;

/// Series in the first round, before any bytes per series are known.
const FIRST_WINDOW_SERIES: usize = 64;

/// The rows a segment is written from, read one series at a time so that a flush never
/// holds a copy of the whole head.
pub(crate) struct SeriesRows<'a, F> {
    /// The series, by id.
    pub series: &'a [(SeriesId, SeriesKind)],
    /// Every column any of them has.
    pub fields: FieldTable,
    /// One series' rows, sorted by time; `None` when it has none.
    pub rows_of: F,
}

/// Writes one month's series as segment `generation`; `max_seq` is the highest sequence
/// number the producing flush covered.
pub(crate) fn write_segment<F>(
    fs: &Fs,
    data_dir: &Path,
    month: Month,
    generation: u64,
    max_seq: u64,
    source: SeriesRows<'_, F>,
    options: EncodeOptions,
) -> Result<WrittenSegment>
where
    F: Fn(SeriesId) -> Option<Chunk> + Sync,
{
    let threads = options.threads;
    let SeriesRows { series, fields, rows_of } = source;
    let mut writer = SegmentWriter::create(fs, data_dir, month, generation, fields.clone())?;
    // A window of series at a time, of about ENCODE_WINDOW_BYTES encoded: the encoded
    // bytes of every series would otherwise all be held at once. Each thread holds one
    // series' rows while it encodes.
    let mut window_len = FIRST_WINDOW_SERIES;
    let mut rest = series;
    while !rest.is_empty() {
        let (window, after) = rest.split_at(window_len.min(rest.len()));
        rest = after;
        let encoded = map_interleaved(window, threads, |(id, kind)| {
            let chunk = rows_of(*id)?;
            Some(encode_series(
                *id,
                *kind,
                &chunk,
                &fields,
                options.block_limits(*kind),
                options.zstd_level_for(*kind),
            ))
        });
        let mut window_bytes = 0;
        for e in encoded.into_iter().flatten() {
            window_bytes += e.bytes.len();
            writer.append(e)?;
        }
        window_len = next_window_len(window.len(), window_bytes, threads);
    }
    writer.finish(max_seq)
}

/// Series in the next round of [`write_segment`], after a round of `series` encoded to
/// `bytes`: about [`ENCODE_WINDOW_BYTES`] at the same bytes per series, at least a few
/// per thread and at most [`ENCODE_WINDOW_SERIES`].
fn next_window_len(series: usize, bytes: usize, threads: usize) -> usize {
    let per_series = (bytes / series.max(1)).max(1);
    (ENCODE_WINDOW_BYTES / per_series).clamp(4 * threads.max(1), ENCODE_WINDOW_SERIES)
}

/// `items.iter().map(f)` on up to `threads` threads, results in input order. Items are
/// dealt round-robin, so large and small ones (series) spread evenly over the threads.
pub(crate) fn map_interleaved<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return items.iter().map(f).collect();
    }
    let f = &f;
    let parts: Vec<Vec<(usize, R)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    items
                        .iter()
                        .enumerate()
                        .skip(t)
                        .step_by(threads)
                        .map(|(i, item)| (i, f(item)))
                        .collect()
                })
            })
            .collect();
        // A panic in `f` is a bug: let it surface as one.
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut all: Vec<(usize, R)> = parts.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_windows_hold_about_a_fixed_number_of_bytes() {
        // Series of 40 kB: about 8 MiB of them.
        assert_eq!(next_window_len(64, 64 * 40_000, 2), (8 << 20) / 40_000);
        // Series of a few bytes: as many as a round takes.
        assert_eq!(next_window_len(64, 64 * 30, 2), ENCODE_WINDOW_SERIES);
        // Series of 50 MB: still a few per thread; nothing written says nothing.
        assert_eq!(next_window_len(8, 8 * 50_000_000, 2), 8);
        assert_eq!(next_window_len(0, 0, 0), ENCODE_WINDOW_SERIES);
    }

    const HOUR: i64 = 3_600_000_000_000;

    #[test]
    fn blocks_are_cut_by_rows_and_for_numeric_series_by_span() {
        let rows_only = BlockLimits {
            max_rows: 16_384,
            max_span_ns: i64::MAX,
        };
        assert_eq!(rows_only.block_count(16_384, 0, 45 * HOUR), 1);
        assert_eq!(rows_only.block_count(16_385, 0, 45 * HOUR), 2);
        let six_hours = BlockLimits {
            max_rows: 16_384,
            max_span_ns: 6 * HOUR,
        };
        // W1 at 10 s: 45.5 h of one host in a full block becomes 8 blocks of 2,048 rows.
        assert_eq!(six_hours.block_count(16_384, 0, 16_383 * 10_000_000_000), 8);
        // A span within the bound, or exactly on it, is one block.
        assert_eq!(six_hours.block_count(5_000, 0, 6 * HOUR), 2);
        assert_eq!(six_hours.block_count(5_000, 0, 6 * HOUR - 1), 1);
        // Sparse series keep 1,024 rows per block whatever their span.
        assert_eq!(six_hours.block_count(2_000, 0, 30 * 24 * HOUR), 1);
        assert_eq!(six_hours.block_count(4_096, 0, 30 * 24 * HOUR), 4);
        // Times at the ends of i64 do not overflow.
        assert_eq!(six_hours.block_count(10_000, i64::MIN, i64::MAX), 9);
        let options = EncodeOptions {
            block_max_rows: 16_384,
            block_max_span_ns: 6 * HOUR,
            zstd_level: 3,
            commit_zstd_level: 9,
            threads: 1,
        };
        assert_eq!(options.block_limits(SeriesKind::Metric), six_hours);
        assert_eq!(options.block_limits(SeriesKind::Performance), six_hours);
        for kind in [SeriesKind::Log, SeriesKind::Alert, SeriesKind::Commit] {
            assert_eq!(options.block_limits(kind), rows_only);
        }
    }
}
