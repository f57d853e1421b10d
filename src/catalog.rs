//! The series catalog: dense [`SeriesId`]s for series keys, persisted in `<dir>/CATALOG`.
//!
//! The file is a header followed by framed records (see [`crate::io::frame`]), one per
//! series, in id order. New series are first made durable by the WAL record that created
//! them; the catalog file is appended and fsync'd at every flush, before the manifest that
//! lets the WAL go. So a segment never refers to an id the catalog file lacks, and replay
//! re-creates any id the file has not caught up with.

use crate::codec::bytes::{Reader, put_varint};
use crate::error::{Error, Limit, Result};
use crate::files::FileKind;
use crate::index::{SeriesSelector, TagIndex};
use crate::io::{self, FileWriter, Fs, frame};
use crate::model::{SeriesId, SeriesKey, SeriesKind};
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const KIND_SERIES: u8 = 1;

/// The in-memory catalog.
#[derive(Debug, Default, Clone)]
pub(crate) struct Catalog {
    keys: Vec<Arc<SeriesKey>>,
    index: FxHashMap<Arc<SeriesKey>, SeriesId>,
    /// Bitmaps by measurement, kind and tag; covers every key once attached.
    tags: TagIndex,
    heap_bytes: usize,
}

/// The ids of one batch's series, some of them reserved for series to create.
#[derive(Debug)]
pub(crate) struct Reservation {
    /// Global id and kind of each batch-local series.
    pub ids: Vec<(SeriesId, SeriesKind)>,
    /// The series the batch creates, with their reserved ids (ascending, after the last).
    pub new_series: Vec<(SeriesId, SeriesKey)>,
}

impl Catalog {
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    pub(crate) fn lookup(&self, key: &SeriesKey) -> Option<SeriesId> {
        self.index.get(key).copied()
    }

    pub(crate) fn get(&self, id: SeriesId) -> Option<&Arc<SeriesKey>> {
        self.keys.get(id as usize)
    }

    /// Adds a key that is not present; returns its new id.
    pub(crate) fn insert(&mut self, key: SeriesKey) -> SeriesId {
        let id = self.insert_untagged(key);
        self.tags.insert(id, &self.keys[id as usize]);
        id
    }

    /// Adds a key without indexing its tags (loading the catalog file, before the tag
    /// index is attached).
    fn insert_untagged(&mut self, key: SeriesKey) -> SeriesId {
        let id = self.keys.len() as SeriesId;
        self.heap_bytes += key.heap_bytes() * 2;
        let key = Arc::new(key);
        self.keys.push(key.clone());
        self.index.insert(key, id);
        id
    }

    /// Installs the tag index, which must cover exactly the keys loaded so far.
    pub(crate) fn attach_tags(&mut self, tags: TagIndex) {
        debug_assert_eq!(tags.len(), self.keys.len() as u64);
        self.tags = tags;
    }

    pub(crate) fn tags(&self) -> &TagIndex {
        &self.tags
    }

    /// Ids of the series the selector covers.
    pub(crate) fn select(&self, selector: &SeriesSelector) -> Result<RoaringBitmap> {
        self.tags
            .select(selector.kind, selector.measurement.as_deref(), selector.predicate.as_ref())
    }

    /// The ids of a batch's series keys: existing ones, and for the keys the catalog
    /// lacks the next free ids, in order, within `max_series`. Nothing changes until
    /// [`Catalog::commit`], which the caller does once the batch is in the WAL; it holds
    /// the writer lock in between, so no other batch reserves the same ids.
    pub(crate) fn reserve(&self, keys: &[SeriesKey], max_series: u64) -> Result<Reservation> {
        let mut ids = Vec::with_capacity(keys.len());
        let mut new_series = Vec::new();
        for key in keys {
            let id = match self.lookup(key) {
                Some(id) => id,
                None => {
                    let id = (self.keys.len() + new_series.len()) as SeriesId;
                    new_series.push((id, key.clone()));
                    id
                }
            };
            ids.push((id, key.kind()));
        }
        let total = self.keys.len() as u64 + new_series.len() as u64;
        if !new_series.is_empty() && total > max_series {
            return Err(Error::LimitExceeded {
                limit: Limit::Series,
                value: total,
                max: max_series,
                context: Some(format!("the batch would create {} new series", new_series.len())),
            });
        }
        Ok(Reservation { ids, new_series })
    }

    /// Creates the series a [`Catalog::reserve`] set aside, with the ids it gave them.
    pub(crate) fn commit(&mut self, reservation: &Reservation) {
        for (id, key) in &reservation.new_series {
            // Invariant: reservations are made and committed under the writer lock, so the
            // reserved id is the next one.
            debug_assert_eq!(*id as usize, self.keys.len(), "reserved series id out of order");
            self.insert(key.clone());
        }
    }

    /// Re-creates a series at a known id during replay: the id must be the next one, or
    /// already hold the same key.
    pub(crate) fn insert_with_id(&mut self, id: SeriesId, key: SeriesKey) -> std::result::Result<(), String> {
        match self.keys.get(id as usize) {
            Some(existing) if **existing == key => Ok(()),
            Some(existing) => Err(format!("series id {id} is {existing} in the catalog but {key} in the log")),
            None if id as usize == self.keys.len() => {
                self.insert(key);
                Ok(())
            }
            None => Err(format!("series id {id} skips ids after {}", self.keys.len())),
        }
    }

    /// All keys in id order.
    pub(crate) fn keys(&self) -> &[Arc<SeriesKey>] {
        &self.keys
    }
}

fn encode_key(id: SeriesId, key: &SeriesKey, out: &mut Vec<u8>) {
    out.extend_from_slice(&id.to_le_bytes());
    out.push(key.kind() as u8);
    put_varint(out, key.measurement().len() as u64);
    out.extend_from_slice(key.measurement().as_bytes());
    put_varint(out, key.tags().len() as u64);
    for (k, v) in key.tags() {
        put_varint(out, k.len() as u64);
        out.extend_from_slice(k.as_bytes());
        put_varint(out, v.len() as u64);
        out.extend_from_slice(v.as_bytes());
    }
}

pub(crate) fn decode_key(payload: &[u8]) -> std::result::Result<(SeriesId, SeriesKey), String> {
    let mut r = Reader::new(payload);
    let id = r.u32_le().map_err(|e| e.to_string())?;
    let kind = SeriesKind::from_u8(r.u8().map_err(|e| e.to_string())?).ok_or("unknown series kind")?;
    let text = |r: &mut Reader<'_>| -> std::result::Result<String, String> {
        let bytes = r.prefixed().map_err(|e| e.to_string())?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "series text is not UTF-8".to_string())
    };
    let measurement = text(&mut r)?;
    let n = r.len(payload.len()).map_err(|e| e.to_string())?;
    let mut tags = Vec::with_capacity(n);
    for _ in 0..n {
        tags.push((text(&mut r)?, text(&mut r)?));
    }
    if !r.is_empty() {
        return Err("trailing bytes in a series record".into());
    }
    let key = SeriesKey::new(kind, measurement, tags).map_err(|e| e.to_string())?;
    Ok((id, key))
}

/// The catalog file, appended at flushes.
#[derive(Debug)]
pub(crate) struct CatalogFile {
    path: PathBuf,
    file: FileWriter,
    /// Entries in the file.
    persisted: usize,
}

/// What opening the catalog found.
#[derive(Debug)]
pub(crate) struct LoadedCatalog {
    pub catalog: Catalog,
    pub file: CatalogFile,
    /// Bytes cut off a torn tail, if any.
    pub torn_bytes: u64,
    /// Series the persisted tag index covered (0 when it had to be rebuilt).
    pub tags_covered: u64,
}

impl CatalogFile {
    /// Opens (or creates) `<dir>/CATALOG` and loads it. A torn tail left by a crash during an
    /// append is cut off; damage before the tail is corruption.
    pub(crate) fn open(fs: &Fs, dir: &Path) -> Result<LoadedCatalog> {
        CatalogFile::load(fs, dir, true)
    }

    /// Loads the catalog; with `repair` false nothing is created or truncated (a torn tail
    /// is only reported in `torn_bytes`).
    pub(crate) fn load(fs: &Fs, dir: &Path, repair: bool) -> Result<LoadedCatalog> {
        let path = FileKind::Catalog.path(dir);
        let bytes = match io::read_file_if_exists(&path)? {
            Some(b) if !b.is_empty() => b,
            _ if !repair => return Err(Error::NotFound { path }),
            _ => {
                let header = FileKind::Catalog.header(&[]);
                fs.write_file_atomic(&path, &header)?;
                header
            }
        };
        FileKind::Catalog.check_header(&path, &bytes)?;
        let mut catalog = Catalog::default();
        let mut pos = FileKind::Catalog.header_len();
        let mut torn_bytes = 0;
        loop {
            match frame::read(&bytes, pos) {
                frame::Frame::Record { kind, payload, next } => {
                    if kind != KIND_SERIES {
                        return Err(Error::malformed(&path, pos as u64, format!("unknown catalog record kind {kind}")));
                    }
                    let (id, key) = decode_key(payload).map_err(|why| Error::malformed(&path, pos as u64, why))?;
                    if id as usize != catalog.len() {
                        return Err(Error::malformed(&path, pos as u64, format!("series id {id} out of order")));
                    }
                    if catalog.lookup(&key).is_some() {
                        return Err(Error::malformed(&path, pos as u64, format!("series {key} listed twice")));
                    }
                    catalog.insert_untagged(key);
                    pos = next;
                }
                frame::Frame::End => break,
                frame::Frame::Bad(kind) => {
                    if frame::valid_record_after(&bytes, pos) {
                        return Err(Error::corruption(&path, pos as u64, kind));
                    }
                    torn_bytes = (bytes.len() - pos) as u64;
                    if repair {
                        fs.truncate(&path, pos as u64)?;
                    }
                    break;
                }
            }
        }
        let file = fs.open_append(&path)?;
        let persisted = catalog.len();
        let (tags, tags_covered) = TagIndex::load_or_rebuild(dir, &catalog.keys)?;
        catalog.attach_tags(tags);
        Ok(LoadedCatalog {
            catalog,
            file: CatalogFile { path, file, persisted },
            torn_bytes,
            tags_covered,
        })
    }

    /// Appends the entries of `catalog` the file lacks, and fsyncs.
    pub(crate) fn persist(&mut self, keys: &[Arc<SeriesKey>]) -> Result<()> {
        if keys.len() <= self.persisted {
            return Ok(());
        }
        let mut out = Vec::new();
        let mut payload = Vec::new();
        for (i, key) in keys.iter().enumerate().skip(self.persisted) {
            payload.clear();
            encode_key(i as SeriesId, key, &mut payload);
            frame::append(&mut out, KIND_SERIES, &payload);
        }
        // A failure fails the flush, which poisons the store: nothing is appended after a
        // partial record, and the next open cuts it as a torn tail.
        self.file.write_all(&out)?;
        self.file.sync_data()?;
        self.persisted = keys.len();
        Ok(())
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_persists_and_recovers_from_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let a = SeriesKey::new(SeriesKind::Metric, "cpu", [("host", "a")]).unwrap();
        let b = SeriesKey::new(SeriesKind::Log, "log", [("level", "INFO")]).unwrap();
        {
            let mut loaded = CatalogFile::open(&Fs::default(), dir.path()).unwrap();
            assert_eq!(loaded.catalog.insert(a.clone()), 0);
            assert_eq!(loaded.catalog.insert(b.clone()), 1);
            loaded.file.persist(loaded.catalog.keys()).unwrap();
        }
        let path = FileKind::Catalog.path(dir.path());
        let len = std::fs::metadata(&path).unwrap().len();
        let loaded = CatalogFile::open(&Fs::default(), dir.path()).unwrap();
        assert_eq!(loaded.catalog.lookup(&b), Some(1));
        assert_eq!(loaded.file.persisted, 2);
        // Cut the last record short: it is dropped, the first survives.
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 3).unwrap();
        drop(f);
        let loaded = CatalogFile::open(&Fs::default(), dir.path()).unwrap();
        assert_eq!(loaded.catalog.len(), 1);
        assert!(loaded.torn_bytes > 0);
        // Damage to the first record with a valid one after it is corruption.
        let mut loaded = loaded;
        loaded.catalog.insert(b.clone());
        loaded.file.persist(loaded.catalog.keys()).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[FileKind::Catalog.header_len() + 14] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(CatalogFile::open(&Fs::default(), dir.path()).unwrap_err().is_corruption());
    }
}
