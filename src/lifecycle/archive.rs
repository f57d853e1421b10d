//! The archive file: whole months of segments packed into one compressed, checksummed file
//! with an index of what it holds, so they can leave the store and come back.
//!
//! Layout (version 2; see `docs/FORMAT.md`):
//!
//! ```text
//! header  "ANNALARC" | version u32 LE | 0u32
//! entries one zstd frame per segment file, back to back
//! objects one zstd frame per object (a large diff) the segments' commits name
//! index   JSON (ArchiveIndex): entries with offsets, lengths and crc32 of the raw bytes,
//!         the manifest entry of each segment, the catalog slice (every series the
//!         segments hold, by id), the objects with offsets and lengths, and the keys of
//!         objects the commits name that the store did not have
//! footer  index offset u64 | index length u64 | crc32 of the index u32 | "ANNALARC"
//! ```
//!
//! Reading trusts nothing: magic, version, the index checksum, entry names (exactly
//! `YYYY-MM/<20 digits>.seg`, so no absolute paths and no `..`), entry bounds, and, in
//! [`verify`], every entry decompressed within its declared length and checked against its
//! crc32, and every object against its sha256 key. A restore runs [`verify`] before it
//! writes anything. Version 1 (no objects) is still read.

use crate::error::{CorruptionKind, Error, Result};
use crate::files::FileKind;
use crate::io;
use crate::manifest::{SegmentMeta, parse_segment_name};
use crate::model::{SeriesKey, SeriesKind};
use crate::time::Month;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The archive format version, also the index's `format`.
const VERSION: u32 = FileKind::Archive.version();
const HEADER_LEN: u64 = FileKind::Archive.header_len() as u64;
const FOOTER_LEN: u64 = 28;
/// The index of an archive is read whole; a larger one is not an archive this build wrote.
const MAX_INDEX_BYTES: u64 = 256 << 20;
/// zstd level of entries: segments are already compressed, so a fast level loses little.
const ZSTD_LEVEL: i32 = 3;

/// What an archive holds, as stored in it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchiveIndex {
    pub format: u32,
    /// When it was written (nanoseconds since the epoch).
    pub created_ns: i64,
    /// `YYYY-MM`, ascending.
    pub months: Vec<String>,
    pub entries: Vec<ArchiveEntry>,
    /// Every series the segments hold.
    pub series: Vec<ArchivedSeries>,
    /// The objects (large diffs) the segments' commits name, after the entries.
    #[serde(default)]
    pub objects: Vec<ArchivedObject>,
    /// Keys of objects the segments' commits name that the store did not hold when the
    /// archive was written (a restore reports them).
    #[serde(default)]
    pub missing_objects: Vec<String>,
}

/// One object in an archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchivedObject {
    /// The sha256 of the raw bytes, lower-case hex.
    pub key: String,
    pub offset: u64,
    pub compressed_len: u64,
    pub raw_len: u64,
}

/// One segment file in an archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchiveEntry {
    /// `YYYY-MM/<generation, 20 digits>.seg`, relative to the data directory.
    pub name: String,
    pub offset: u64,
    pub compressed_len: u64,
    pub raw_len: u64,
    pub crc32: u32,
    pub generation: u64,
    pub file_crc: u32,
    pub min_ts: i64,
    pub max_ts: i64,
    pub rows: u64,
    pub points: u64,
    pub series: u32,
    pub min_seq: u64,
    pub max_seq: u64,
    pub level: u8,
}

/// A series key, by its id in the store that wrote the archive.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub(crate) struct ArchivedSeries {
    pub id: u32,
    pub kind: u8,
    pub measurement: String,
    pub tags: Vec<(String, String)>,
}

impl ArchivedSeries {
    pub(crate) fn of(id: u32, key: &SeriesKey) -> ArchivedSeries {
        ArchivedSeries {
            id,
            kind: key.kind() as u8,
            measurement: key.measurement().to_string(),
            tags: key.tags().to_vec(),
        }
    }

    /// The key, or `None` when the stored parts do not make a valid one.
    pub(crate) fn key(&self) -> Option<SeriesKey> {
        let kind = SeriesKind::from_u8(self.kind)?;
        SeriesKey::new(kind, self.measurement.clone(), self.tags.iter().cloned()).ok()
    }
}

impl ArchiveEntry {
    /// The month the entry's name places it in (validated by [`read_index`]).
    pub(crate) fn month(&self) -> Option<Month> {
        Month::parse(self.name.split('/').next()?)
    }

    /// The manifest entry of the restored segment.
    pub(crate) fn segment_meta(&self) -> Option<SegmentMeta> {
        Some(SegmentMeta {
            month: self.month()?,
            generation: self.generation,
            file_len: self.raw_len,
            file_crc: self.file_crc,
            min_ts: self.min_ts,
            max_ts: self.max_ts,
            rows: self.rows,
            points: self.points,
            series: self.series,
            min_seq: self.min_seq,
            max_seq: self.max_seq,
            level: self.level,
            tier: crate::manifest::Resolution::Detail,
        })
    }
}

/// Reads an object's bytes by key for [`write`]; `None` when the store does not have it.
pub(crate) type ObjectSource<'a> = dyn Fn(&str) -> Result<Option<Vec<u8>>> + 'a;

/// What goes into an archive besides its segments.
pub(crate) struct ArchiveContents<'a> {
    /// The catalog slice.
    pub series: Vec<ArchivedSeries>,
    /// Keys of the objects the segments' commits name.
    pub object_keys: Vec<String>,
    /// Where their bytes come from.
    pub objects: &'a ObjectSource<'a>,
}

/// Writes an archive of `segments` (paths and manifest entries) with the catalog slice and
/// objects of `contents` to `path` (through a temporary file, fsync'd and renamed).
/// Returns its size and the index written.
pub(crate) fn write(
    fs: &io::Fs,
    path: &Path,
    segments: &[(PathBuf, SegmentMeta)],
    contents: ArchiveContents<'_>,
    created_ns: i64,
    progress: &mut dyn FnMut(u64),
) -> Result<(u64, ArchiveIndex)> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs.create_dir_durable(parent)?;
    }
    let tmp = io::temporary_sibling(path);
    fs.remove_file(&tmp)?;
    let result = write_to(fs, &tmp, segments, contents, created_ns, progress);
    match result {
        Ok(len) => {
            fs.rename_durable(&tmp, path)?;
            Ok(len)
        }
        Err(e) => {
            let _ = fs.remove_file(&tmp);
            Err(e)
        }
    }
}

fn write_to(
    fs: &io::Fs,
    tmp: &Path,
    segments: &[(PathBuf, SegmentMeta)],
    contents: ArchiveContents<'_>,
    created_ns: i64,
    progress: &mut dyn FnMut(u64),
) -> Result<(u64, ArchiveIndex)> {
    let file = fs.create_new(tmp)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let werr = |e: std::io::Error| Error::io("write", tmp, e);
    out.write_all(&FileKind::Archive.header(&0u32.to_le_bytes())).map_err(werr)?;
    let mut offset = HEADER_LEN;
    let mut entries = Vec::with_capacity(segments.len());
    let mut months: Vec<String> = Vec::new();
    for (source, meta) in segments {
        let bytes = io::map_readonly(source)?;
        if bytes.len() as u64 != meta.file_len {
            return Err(Error::corruption(
                source,
                0,
                CorruptionKind::Truncated {
                    needed: meta.file_len,
                    available: bytes.len() as u64,
                },
            ));
        }
        let crc32 = crc32fast::hash(&bytes);
        let compressed = zstd::bulk::compress(&bytes, ZSTD_LEVEL).map_err(|e| Error::io("compress", source, e))?;
        out.write_all(&compressed).map_err(werr)?;
        let name = format!("{}/{:020}.seg", meta.month, meta.generation);
        entries.push(ArchiveEntry {
            name,
            offset,
            compressed_len: compressed.len() as u64,
            raw_len: bytes.len() as u64,
            crc32,
            generation: meta.generation,
            file_crc: meta.file_crc,
            min_ts: meta.min_ts,
            max_ts: meta.max_ts,
            rows: meta.rows,
            points: meta.points,
            series: meta.series,
            min_seq: meta.min_seq,
            max_seq: meta.max_seq,
            level: meta.level,
        });
        offset += compressed.len() as u64;
        let month = meta.month.to_string();
        if !months.contains(&month) {
            months.push(month);
        }
        progress(meta.file_len);
    }
    months.sort();
    let mut objects = Vec::with_capacity(contents.object_keys.len());
    let mut missing_objects = Vec::new();
    for key in contents.object_keys {
        let Some(bytes) = (contents.objects)(&key)? else {
            missing_objects.push(key);
            continue;
        };
        let compressed = zstd::bulk::compress(&bytes, ZSTD_LEVEL).map_err(|e| Error::io("compress", tmp, e))?;
        out.write_all(&compressed).map_err(werr)?;
        objects.push(ArchivedObject {
            key,
            offset,
            compressed_len: compressed.len() as u64,
            raw_len: bytes.len() as u64,
        });
        offset += compressed.len() as u64;
    }
    let index = ArchiveIndex {
        format: VERSION,
        created_ns,
        months,
        entries,
        series: contents.series,
        objects,
        missing_objects,
    };
    let index_bytes = serde_json::to_vec(&index).map_err(|e| Error::invalid(format!("encoding the archive index: {e}")))?;
    out.write_all(&index_bytes).map_err(werr)?;
    let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
    footer.extend_from_slice(&offset.to_le_bytes());
    footer.extend_from_slice(&(index_bytes.len() as u64).to_le_bytes());
    footer.extend_from_slice(&crc32fast::hash(&index_bytes).to_le_bytes());
    footer.extend_from_slice(FileKind::Archive.magic());
    out.write_all(&footer).map_err(werr)?;
    let file = out.into_inner().map_err(|e| Error::io("write", tmp, e.into_error()))?;
    file.sync_all()?;
    Ok((offset + index_bytes.len() as u64 + FOOTER_LEN, index))
}

/// Reads and checks an archive's header, footer and index (not the entries' contents).
pub(crate) fn read_index(path: &Path) -> Result<ArchiveIndex> {
    let mut file = io::open_read(path)?;
    let len = file.metadata().map_err(|e| Error::io("stat", path, e))?.len();
    let bad = |offset: u64, why: String| Error::malformed(path, offset, why);
    if len < HEADER_LEN + FOOTER_LEN {
        return Err(Error::corruption(
            path,
            0,
            CorruptionKind::Truncated {
                needed: HEADER_LEN + FOOTER_LEN,
                available: len,
            },
        ));
    }
    let mut header = [0u8; HEADER_LEN as usize];
    read_at(&mut file, path, 0, &mut header)?;
    let version = FileKind::Archive.check_header(path, &header)?.version;
    let mut footer = [0u8; FOOTER_LEN as usize];
    read_at(&mut file, path, len - FOOTER_LEN, &mut footer)?;
    if &footer[20..] != FileKind::Archive.magic() {
        return Err(Error::corruption(path, len - FOOTER_LEN, CorruptionKind::BadMagic));
    }
    let u64_at = |at: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&footer[at..at + 8]);
        u64::from_le_bytes(a)
    };
    let (index_offset, index_len) = (u64_at(0), u64_at(8));
    let stored = u32::from_le_bytes([footer[16], footer[17], footer[18], footer[19]]);
    if index_len > MAX_INDEX_BYTES || index_offset < HEADER_LEN || index_offset.checked_add(index_len) != Some(len - FOOTER_LEN) {
        return Err(bad(len - FOOTER_LEN, "the footer's index bounds do not fit the file".into()));
    }
    let mut index_bytes = vec![0u8; index_len as usize];
    read_at(&mut file, path, index_offset, &mut index_bytes)?;
    let computed = crc32fast::hash(&index_bytes);
    if computed != stored {
        return Err(Error::corruption(path, index_offset, CorruptionKind::Checksum { stored, computed }));
    }
    let index: ArchiveIndex =
        serde_json::from_slice(&index_bytes).map_err(|e| bad(index_offset, format!("the index does not decode: {e}")))?;
    if index.format != version {
        return Err(bad(
            index_offset,
            format!("index format {} in a version {version} file", index.format),
        ));
    }
    // Entries must name segments of the listed months, lie between header and index in
    // order, and not overlap.
    let mut next = HEADER_LEN;
    let mut seen = std::collections::BTreeSet::new();
    for entry in &index.entries {
        validate_name(&entry.name).map_err(|why| bad(index_offset, format!("entry {:?}: {why}", entry.name)))?;
        let month = entry.month().map(|m| m.to_string()).unwrap_or_default();
        if !index.months.contains(&month) {
            return Err(bad(
                index_offset,
                format!("entry {:?} is in a month the index does not list", entry.name),
            ));
        }
        if parse_segment_name(entry.name.rsplit('/').next().unwrap_or_default()) != Some(entry.generation) {
            return Err(bad(index_offset, format!("entry {:?} names another generation", entry.name)));
        }
        if !seen.insert(entry.name.clone()) {
            return Err(bad(index_offset, format!("entry {:?} appears twice", entry.name)));
        }
        if entry.offset != next || entry.offset.checked_add(entry.compressed_len).is_none_or(|end| end > index_offset) {
            return Err(bad(index_offset, format!("entry {:?} lies outside the entry area", entry.name)));
        }
        next = entry.offset + entry.compressed_len;
    }
    let mut keys = std::collections::BTreeSet::new();
    for object in &index.objects {
        if !crate::objects::is_key(&object.key) {
            return Err(bad(index_offset, format!("object {:?} is not a sha256 key", object.key)));
        }
        if !keys.insert(object.key.as_str()) {
            return Err(bad(index_offset, format!("object {} appears twice", object.key)));
        }
        if object.offset != next
            || object
                .offset
                .checked_add(object.compressed_len)
                .is_none_or(|end| end > index_offset)
        {
            return Err(bad(index_offset, format!("object {} lies outside the object area", object.key)));
        }
        next = object.offset + object.compressed_len;
    }
    if let Some(key) = index.missing_objects.iter().find(|k| !crate::objects::is_key(k)) {
        return Err(bad(index_offset, format!("missing object {key:?} is not a sha256 key")));
    }
    if next != index_offset {
        return Err(bad(index_offset, "bytes between the entries and the index".into()));
    }
    Ok(index)
}

/// Checks that an entry name is a relative `YYYY-MM/<20 digits>.seg`: nothing absolute,
/// no `..`, no other directory.
pub(crate) fn validate_name(name: &str) -> std::result::Result<(), String> {
    if name.starts_with('/') || name.starts_with('\\') || Path::new(name).is_absolute() {
        return Err("absolute paths are not allowed".into());
    }
    if name.split(['/', '\\']).any(|part| part == ".." || part == ".") {
        return Err("`.` and `..` are not allowed".into());
    }
    let mut parts = name.split('/');
    let (Some(month), Some(file), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err("expected <YYYY-MM>/<generation>.seg".into());
    };
    let canonical = Month::parse(month).is_some_and(|m| m.to_string() == month);
    if !canonical {
        return Err(format!("{month:?} is not a month directory"));
    }
    if parse_segment_name(file).is_none() {
        return Err(format!("{file:?} is not a segment file name"));
    }
    Ok(())
}

/// Receives each verified entry and its decompressed bytes.
pub(crate) type EntrySink<'a> = dyn FnMut(&ArchiveEntry, &[u8]) -> Result<()> + 'a;

/// Receives each verified object's key and bytes.
pub(crate) type ObjectSink<'a> = dyn FnMut(&str, &[u8]) -> Result<()> + 'a;

/// Decompresses every entry, checking its length and crc32 against the index, and every
/// object, checking its length and its sha256 against its key. Calls `sink` with each
/// entry and its bytes, and `object_sink` with each object, when given (restore writes
/// them out); without sinks it only checks.
pub(crate) fn verify(
    path: &Path,
    index: &ArchiveIndex,
    sink: Option<&mut EntrySink<'_>>,
    object_sink: Option<&mut ObjectSink<'_>>,
) -> Result<()> {
    let mut file = io::open_read(path)?;
    let mut sink = sink;
    for entry in &index.entries {
        let raw = inflate(&mut file, path, &entry.name, entry.offset, entry.compressed_len, entry.raw_len)?;
        let computed = crc32fast::hash(&raw);
        if computed != entry.crc32 {
            return Err(Error::corruption(
                path,
                entry.offset,
                CorruptionKind::Checksum {
                    stored: entry.crc32,
                    computed,
                },
            ));
        }
        if let Some(sink) = sink.as_deref_mut() {
            sink(entry, &raw)?;
        }
    }
    let mut object_sink = object_sink;
    for object in &index.objects {
        let raw = inflate(&mut file, path, &object.key, object.offset, object.compressed_len, object.raw_len)?;
        let found = crate::objects::key_of(&raw);
        if found != object.key {
            return Err(Error::malformed(
                path,
                object.offset,
                format!("object {} holds bytes whose sha256 is {found}", object.key),
            ));
        }
        if let Some(sink) = object_sink.as_deref_mut() {
            sink(&object.key, &raw)?;
        }
    }
    Ok(())
}

/// Reads and decompresses the frame of `name` at `offset`, refusing to inflate beyond
/// `raw_len` and checking it reaches it.
fn inflate(file: &mut std::fs::File, path: &Path, name: &str, offset: u64, compressed_len: u64, raw_len: u64) -> Result<Vec<u8>> {
    let mut compressed = vec![0u8; usize::try_from(compressed_len).map_err(|_| Error::malformed(path, offset, "entry too large"))?];
    read_at(file, path, offset, &mut compressed)?;
    let mut decoder = zstd::stream::read::Decoder::with_buffer(&compressed[..])
        .map_err(|e| Error::malformed(path, offset, format!("entry {name:?}: {e}")))?;
    // Never inflate beyond the declared size: read one byte more to detect a lie.
    let mut raw = Vec::with_capacity(raw_len.min(1 << 30) as usize);
    (&mut decoder)
        .take(raw_len.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(|e| Error::malformed(path, offset, format!("entry {name:?} does not decompress: {e}")))?;
    if raw.len() as u64 != raw_len {
        return Err(Error::malformed(
            path,
            offset,
            format!("entry {name:?} holds {} bytes, the index says {raw_len}", raw.len()),
        ));
    }
    Ok(raw)
}

fn read_at(file: &mut std::fs::File, path: &Path, offset: u64, buf: &mut [u8]) -> Result<()> {
    file.seek(SeekFrom::Start(offset)).map_err(|e| Error::io("seek", path, e))?;
    file.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::corruption(
                path,
                offset,
                CorruptionKind::Truncated {
                    needed: buf.len() as u64,
                    available: 0,
                },
            )
        } else {
            Error::io("read", path, e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_names_must_be_segments_of_a_month() {
        assert!(validate_name("2016-01/00000000000000000003.seg").is_ok());
        for bad in [
            "/etc/passwd",
            "../2016-01/00000000000000000003.seg",
            "2016-01/../00000000000000000003.seg",
            "2016-01/./00000000000000000003.seg",
            "2016-01/text/meta.json",
            "2016-1/00000000000000000003.seg",
            "2016-01/3.seg",
            "2016-01\\..\\x",
            "",
        ] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
