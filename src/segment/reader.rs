//! Reading a sealed segment through a read-only memory map.

use super::block::{self, BlockError, BlockMeta};
use super::{DIRECTORY_ENTRY_LEN, FOOTER_LEN, HEADER_LEN};
use crate::cache::{BlockCache, BlockKey};
use crate::chunk::Chunk;
use crate::codec::bytes::Reader;
use crate::error::{CorruptionKind, Error, Result};
use crate::files::FileKind;
use crate::io;
use crate::manifest::SegmentMeta;
use crate::model::{SeriesId, SeriesKind, ValueType};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A series' entry in a segment.
#[derive(Debug, Clone)]
pub(crate) struct SeriesBlocks {
    pub kind: SeriesKind,
    pub blocks: Vec<BlockMeta>,
}

/// An open segment. Cheap to share (`Arc`); the map lives as long as any reader.
pub(crate) struct SegmentReader {
    path: PathBuf,
    /// The file's bytes: a read-only map of a sealed file (or, for fuzzing, a buffer).
    map: Box<dyn std::ops::Deref<Target = [u8]> + Send + Sync>,
    meta: SegmentMeta,
    fields: Vec<(Arc<str>, ValueType)>,
    field_types: Vec<ValueType>,
    index_start: usize,
    directory_start: usize,
    n_series: usize,
    file_crc: u32,
    /// The series the segment holds, for pruning.
    series_set: roaring::RoaringBitmap,
    cache: Option<Arc<BlockCache>>,
    /// How its blocks are checked (by the file's version).
    block_layout: block::BlockLayout,
    /// Set, to the file system to delete through, when the manifest no longer lists the
    /// file (compaction replaced it, or its
    /// month was archived or expired): the file is deleted when the last reader drops, so
    /// snapshots taken before keep reading it.
    retired: std::sync::OnceLock<crate::io::Fs>,
    /// The map itself, when the bytes are a file map (not a buffer).
    file_map: Option<Arc<memmap2::Mmap>>,
}

/// Shares a map between the reader's byte view and its page releasing.
struct MapRef(Arc<memmap2::Mmap>);

impl std::ops::Deref for MapRef {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for SegmentReader {
    fn drop(&mut self) {
        if let Some(fs) = self.retired.get() {
            // A failure leaves an unlisted file, which the next open removes.
            let _ = fs.remove_file(&self.path);
        }
    }
}

/// Bytes a verify reads between releases of the file's resident pages.
const RELEASE_EVERY: usize = 64 << 20;

fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

impl std::fmt::Debug for SegmentReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentReader")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl SegmentReader {
    /// Maps and checks a segment: size and checksum as recorded in the manifest, header,
    /// footer, and the index checksum. Blocks are checked when read.
    pub(crate) fn open(path: &Path, meta: &SegmentMeta) -> Result<SegmentReader> {
        let map = Arc::new(io::map_readonly(path)?);
        let mut reader = SegmentReader::from_bytes(path, Box::new(MapRef(map.clone())), meta)?;
        reader.file_map = Some(map);
        Ok(reader)
    }

    /// Lets the kernel drop the file's resident pages (a long sequential read, such as a
    /// merge or a verify, would otherwise keep the whole file resident).
    pub(crate) fn release_pages(&self) {
        if let Some(map) = &self.file_map {
            io::release_mapped_pages(map);
        }
    }

    /// Checks and wraps a segment's bytes; `path` names them in errors.
    pub(crate) fn from_bytes(
        path: &Path,
        map: Box<dyn std::ops::Deref<Target = [u8]> + Send + Sync>,
        meta: &SegmentMeta,
    ) -> Result<SegmentReader> {
        let len = map.len();
        let bad = |offset: usize, why: String| Error::malformed(path, offset as u64, why);
        if len as u64 != meta.file_len {
            return Err(Error::corruption(
                path,
                0,
                CorruptionKind::Truncated {
                    needed: meta.file_len,
                    available: len as u64,
                },
            ));
        }
        if len < HEADER_LEN + FOOTER_LEN {
            return Err(Error::corruption(
                path,
                0,
                CorruptionKind::Truncated {
                    needed: (HEADER_LEN + FOOTER_LEN) as u64,
                    available: len as u64,
                },
            ));
        }
        let b = &map[..];
        if &b[len - 8..] != FileKind::Segment.magic() {
            return Err(Error::corruption(path, (len - 8) as u64, CorruptionKind::BadMagic));
        }
        let version = FileKind::Segment.check_header(path, b)?.version;
        if le_u32(b, 12) as i32 != meta.month.index() || le_u64(b, 16) != meta.generation || le_u32(b, 24) != 0 {
            return Err(bad(12, "header does not match the manifest entry".into()));
        }
        let footer_start = len - FOOTER_LEN;
        let f = &b[footer_start..];
        let stored = le_u32(f, 64);
        let computed = crc32fast::hash(&f[..64]);
        if stored != computed {
            return Err(Error::corruption(
                path,
                footer_start as u64,
                CorruptionKind::Checksum { stored, computed },
            ));
        }
        let index_start = le_u64(f, 0);
        let directory_start = le_u64(f, 8);
        let n_series = le_u32(f, 16) as usize;
        let n_fields = le_u32(f, 20) as usize;
        let index_crc = le_u32(f, 56);
        let file_crc = le_u32(f, 60);
        if file_crc != meta.file_crc {
            return Err(bad(footer_start, "file checksum differs from the manifest".into()));
        }
        let (rows, points) = (le_u64(f, 24), le_u64(f, 32));
        let (min_ts, max_ts) = (le_u64(f, 40) as i64, le_u64(f, 48) as i64);
        if rows != meta.rows || points != meta.points || min_ts != meta.min_ts || max_ts != meta.max_ts || n_series != meta.series as usize
        {
            return Err(bad(footer_start, "footer counts differ from the manifest".into()));
        }
        if index_start < HEADER_LEN as u64
            || directory_start < index_start
            || directory_start.checked_add((n_series * DIRECTORY_ENTRY_LEN) as u64) != Some(footer_start as u64)
        {
            return Err(bad(footer_start, "footer offsets are inconsistent".into()));
        }
        let (index_start, directory_start) = (index_start as usize, directory_start as usize);
        let computed = crc32fast::hash(&b[index_start..footer_start]);
        if computed != index_crc {
            return Err(Error::corruption(
                path,
                index_start as u64,
                CorruptionKind::Checksum {
                    stored: index_crc,
                    computed,
                },
            ));
        }
        let mut r = Reader::new(&b[index_start..directory_start]);
        let malformed = |e: crate::codec::DecodeError| bad(index_start, e.0.to_string());
        let count = r.len(n_fields).map_err(malformed)?;
        if count != n_fields {
            return Err(bad(index_start, "field count differs from the footer".into()));
        }
        let mut fields: Vec<(Arc<str>, ValueType)> = Vec::with_capacity(n_fields);
        for _ in 0..n_fields {
            let value_type = ValueType::from_u8(r.u8().map_err(malformed)?)
                .filter(|t| version >= 2 || *t != ValueType::Bytes)
                .ok_or_else(|| bad(index_start, "unknown field type".into()))?;
            let name =
                std::str::from_utf8(r.prefixed().map_err(malformed)?).map_err(|_| bad(index_start, "field name is not UTF-8".into()))?;
            fields.push((Arc::from(name), value_type));
        }
        if fields.windows(2).any(|w| (&*w[0].0, w[0].1) >= (&*w[1].0, w[1].1)) {
            return Err(bad(index_start, "field table not sorted".into()));
        }
        let entries_start = r.position();
        let dir = &b[directory_start..footer_start];
        let mut previous: Option<u32> = None;
        let mut series_set = roaring::RoaringBitmap::new();
        for i in 0..n_series {
            let id = le_u32(dir, i * DIRECTORY_ENTRY_LEN);
            let at = le_u32(dir, i * DIRECTORY_ENTRY_LEN + 4) as usize;
            if previous.is_some_and(|p| p >= id) || at < entries_start || index_start + at >= directory_start {
                return Err(bad(
                    directory_start,
                    "series directory is unsorted or points outside the index".into(),
                ));
            }
            previous = Some(id);
            series_set.insert(id);
        }
        let field_types = fields.iter().map(|(_, t)| *t).collect();
        Ok(SegmentReader {
            path: path.to_path_buf(),
            map,
            meta: meta.clone(),
            fields,
            field_types,
            index_start,
            directory_start,
            n_series,
            file_crc,
            series_set,
            cache: None,
            block_layout: block::BlockLayout::of_version(version),
            retired: std::sync::OnceLock::new(),
            file_map: None,
        })
    }

    /// Shares a cache of decoded blocks with this reader.
    pub(crate) fn with_cache(mut self, cache: Arc<BlockCache>) -> SegmentReader {
        self.cache = Some(cache);
        self
    }

    /// Marks the file for deletion once no reader holds it. Call only after a durable
    /// manifest stopped listing it.
    pub(crate) fn retire(&self, fs: &crate::io::Fs) {
        let _ = self.retired.set(fs.clone());
    }

    /// Where the file is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// The series the segment holds.
    pub(crate) fn series_set(&self) -> &roaring::RoaringBitmap {
        &self.series_set
    }

    pub(crate) fn meta(&self) -> &SegmentMeta {
        &self.meta
    }

    /// The field table: (name, type) by field index.
    pub(crate) fn fields(&self) -> &[(Arc<str>, ValueType)] {
        &self.fields
    }

    fn directory_entry(&self, i: usize) -> (SeriesId, usize) {
        let dir = &self.map[self.directory_start..];
        (
            le_u32(dir, i * DIRECTORY_ENTRY_LEN),
            le_u32(dir, i * DIRECTORY_ENTRY_LEN + 4) as usize,
        )
    }

    /// Series ids in the segment, ascending.
    pub(crate) fn series_ids(&self) -> impl Iterator<Item = SeriesId> + '_ {
        (0..self.n_series).map(|i| self.directory_entry(i).0)
    }

    /// The blocks of `series`, if the segment holds it.
    pub(crate) fn series(&self, series: SeriesId) -> Result<Option<SeriesBlocks>> {
        let (mut lo, mut hi) = (0usize, self.n_series);
        while lo < hi {
            let mid = (lo + hi) / 2;
            let (id, at) = self.directory_entry(mid);
            match id.cmp(&series) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return self.entry(at).map(Some),
            }
        }
        Ok(None)
    }

    fn entry(&self, at: usize) -> Result<SeriesBlocks> {
        let start = self.index_start + at;
        let mut r = Reader::new(&self.map[start..self.directory_start]);
        let bad = |why: &str| Error::malformed(&self.path, start as u64, why);
        let kind = SeriesKind::from_u8(r.u8().map_err(|e| bad(e.0))?).ok_or_else(|| bad("unknown series kind"))?;
        let n = r.len(r.remaining()).map_err(|e| bad(e.0))?;
        let mut blocks = Vec::with_capacity(n);
        for _ in 0..n {
            let b = BlockMeta::decode(&mut r, &self.field_types).map_err(|e| bad(e.0))?;
            let end = b.offset.checked_add(b.len as u64);
            if b.offset < super::HEADER_LEN as u64 || end.is_none_or(|e| e > self.index_start as u64) {
                return Err(bad("block lies outside the data region"));
            }
            if blocks.last().is_some_and(|p: &BlockMeta| p.max_ts > b.min_ts) {
                return Err(bad("blocks of a series overlap in time"));
            }
            blocks.push(b);
        }
        if n == 0 {
            return Err(bad("series without blocks"));
        }
        Ok(SeriesBlocks { kind, blocks })
    }

    /// Decodes a block, verifying its checksum: the columns of `fields` (field-table
    /// indexes, ascending), or all of them. Served from the shared cache when possible.
    pub(crate) fn read_block(&self, series: SeriesId, meta: &BlockMeta, fields: Option<&[u32]>) -> Result<Arc<Chunk>> {
        self.read_block_rows(series, meta, fields, None)
    }

    /// [`SegmentReader::read_block`] for a reader that wants only the rows `keep_row`
    /// accepts (by timestamp and record id): their strings are decoded, the other rows'
    /// come back empty (see [`block::decode_block`]). The whole block from the cache
    /// when it is there; such a partial block is never put there.
    pub(crate) fn read_block_rows(
        &self,
        series: SeriesId,
        meta: &BlockMeta,
        fields: Option<&[u32]>,
        keep_row: Option<&dyn Fn(i64, u64) -> bool>,
    ) -> Result<Arc<Chunk>> {
        let wanted: Box<[u32]> = match fields {
            Some(f) => meta
                .columns
                .iter()
                .map(|c| c.field)
                .filter(|id| f.binary_search(id).is_ok())
                .collect(),
            None => meta.columns.iter().map(|c| c.field).collect(),
        };
        let key = self.cache.as_ref().map(|_| BlockKey {
            month: self.meta.month.index(),
            generation: self.meta.generation,
            offset: meta.offset,
            fields: wanted.clone(),
        });
        if let (Some(cache), Some(key)) = (&self.cache, &key)
            && let Some(hit) = cache.get(key)
        {
            return Ok(hit);
        }
        // A block read in part for the second time within a while is decoded whole, so
        // that the cache keeps it, as it would a block read whole twice.
        let keep_row = match (&self.cache, &key) {
            (Some(cache), Some(key)) if keep_row.is_some() && cache.would_keep(key) => None,
            _ => keep_row,
        };
        let start = meta.offset as usize;
        let bytes = &self.map[start..start + meta.len as usize];
        let mut chunk = block::decode_block(
            bytes,
            meta,
            &self.fields,
            &|f| wanted.binary_search(&f).is_ok(),
            self.block_layout,
            keep_row,
        )
        .map_err(|e| match e {
            BlockError::Checksum { stored, computed } => {
                Error::corruption(&self.path, meta.offset, CorruptionKind::Checksum { stored, computed })
            }
            BlockError::Malformed(d) => Error::malformed(&self.path, meta.offset, d.0),
        })?;
        chunk.series = series;
        let chunk = Arc::new(chunk);
        if keep_row.is_none()
            && let (Some(cache), Some(key)) = (&self.cache, key)
        {
            cache.insert(key, chunk.clone());
        }
        Ok(chunk)
    }

    /// Checks everything: the whole-file checksum, and every block of every series decoded
    /// and compared with its statistics. Returns (rows, points) seen.
    pub(crate) fn verify(&self) -> Result<(u64, u64)> {
        let footer_start = self.map.len() - FOOTER_LEN;
        let mut hasher = crc32fast::Hasher::new();
        for piece in self.map[..footer_start].chunks(RELEASE_EVERY) {
            hasher.update(piece);
            self.release_pages();
        }
        let computed = hasher.finalize();
        if computed != self.file_crc {
            return Err(Error::corruption(
                &self.path,
                0,
                CorruptionKind::Checksum {
                    stored: self.file_crc,
                    computed,
                },
            ));
        }
        let (mut rows, mut points) = (0u64, 0u64);
        let mut since_release = 0usize;
        for i in 0..self.n_series {
            let (id, at) = self.directory_entry(i);
            let entry = self.entry(at)?;
            for b in &entry.blocks {
                let chunk = self.read_block(id, b, None)?;
                block::check_stats(&chunk, b).map_err(|why| Error::malformed(&self.path, b.offset, why))?;
                if entry.kind.is_event() == chunk.record_ids.is_empty() {
                    return Err(Error::malformed(
                        &self.path,
                        b.offset,
                        "record ids present on the wrong kind of series",
                    ));
                }
                rows += chunk.len() as u64;
                points += chunk.point_count() as u64;
                since_release += b.len as usize;
                if since_release >= RELEASE_EVERY {
                    self.release_pages();
                    since_release = 0;
                }
            }
        }
        if rows != self.meta.rows || points != self.meta.points {
            return Err(Error::malformed(
                &self.path,
                footer_start as u64,
                "row or point count differs from the manifest",
            ));
        }
        Ok((rows, points))
    }
}
