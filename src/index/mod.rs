//! The tag index: roaring bitmaps from measurement, kind and (tag key, tag value) to the
//! series ids that have them, and the tag predicates evaluated against it.
//!
//! The index is derived from the catalog and maintained as series are created. It is
//! persisted to `<dir>/TAGS` at flushes (portable roaring format, checksummed) so large
//! catalogs need not rebuild it on open; a missing, stale or damaged file is rebuilt from
//! the catalog. roaring types do not leave this module's crate-private API.

mod predicate;
mod selector;

pub use predicate::TagPredicate;
pub use selector::SeriesSelector;

use crate::codec::bytes::{Reader, put_varint};
use crate::error::Result;
use crate::files::FileKind;
use crate::io;
use crate::model::{SeriesId, SeriesKey, SeriesKind};
use roaring::RoaringBitmap;
use rustc_hash::FxHashMap;
use std::path::Path;

/// Bitmaps of series ids by measurement, kind and tag.
#[derive(Debug, Default, Clone)]
pub(crate) struct TagIndex {
    all: RoaringBitmap,
    by_measurement: FxHashMap<String, RoaringBitmap>,
    pub(super) by_kind: FxHashMap<u8, RoaringBitmap>,
    by_tag: FxHashMap<String, FxHashMap<String, RoaringBitmap>>,
}

/// Adds `id` to the bitmap of `value`, creating it if needed.
fn insert_id(bitmaps: &mut FxHashMap<String, RoaringBitmap>, value: &str, id: SeriesId) {
    match bitmaps.get_mut(value) {
        Some(bitmap) => {
            bitmap.insert(id);
        }
        None => {
            bitmaps.insert(value.to_owned(), singleton(id));
        }
    }
}

/// A bitmap of one id, allocated to size. Inserting into an empty bitmap reserves room for
/// four containers (about 160 bytes); a tag with a value per series (request ids, the
/// cardinality attack in the tests) makes one of these per series, and most stay single.
/// A clone allocates exactly what is used.
fn singleton(id: SeriesId) -> RoaringBitmap {
    let mut bitmap = RoaringBitmap::new();
    bitmap.insert(id);
    bitmap.clone()
}

impl TagIndex {
    /// Adds a series.
    pub(crate) fn insert(&mut self, id: SeriesId, key: &SeriesKey) {
        self.all.insert(id);
        insert_id(&mut self.by_measurement, key.measurement(), id);
        self.by_kind.entry(key.kind() as u8).or_default().insert(id);
        for (k, v) in key.tags() {
            let values = match self.by_tag.get_mut(k.as_str()) {
                Some(values) => values,
                None => self.by_tag.entry(k.clone()).or_default(),
            };
            insert_id(values, v, id);
        }
    }

    /// Number of series covered.
    pub(crate) fn len(&self) -> u64 {
        self.all.len()
    }

    /// Series of a kind and/or measurement matching a predicate.
    pub(crate) fn select(
        &self,
        kind: Option<SeriesKind>,
        measurement: Option<&str>,
        predicate: Option<&TagPredicate>,
    ) -> Result<RoaringBitmap> {
        let mut set = match measurement {
            Some(m) => self.by_measurement.get(m).cloned().unwrap_or_default(),
            None => self.all.clone(),
        };
        if let Some(kind) = kind {
            set &= self.by_kind.get(&(kind as u8)).cloned().unwrap_or_default();
        }
        if let Some(p) = predicate {
            set &= p.evaluate(self, &set)?;
        }
        Ok(set)
    }

    /// Whether two indexes hold the same bitmaps.
    pub(crate) fn same_as(&self, other: &TagIndex) -> bool {
        let clean = |m: &FxHashMap<String, RoaringBitmap>| -> std::collections::BTreeMap<String, RoaringBitmap> {
            m.iter()
                .filter(|(_, b)| !b.is_empty())
                .map(|(k, b)| (k.clone(), b.clone()))
                .collect()
        };
        let tags = |t: &TagIndex| -> std::collections::BTreeMap<(String, String), RoaringBitmap> {
            t.by_tag
                .iter()
                .flat_map(|(k, vs)| {
                    vs.iter()
                        .filter(|(_, b)| !b.is_empty())
                        .map(move |(v, b)| ((k.clone(), v.clone()), b.clone()))
                })
                .collect()
        };
        let kinds = |t: &TagIndex| -> std::collections::BTreeMap<u8, RoaringBitmap> {
            t.by_kind
                .iter()
                .filter(|(_, b)| !b.is_empty())
                .map(|(k, b)| (*k, b.clone()))
                .collect()
        };
        self.all == other.all
            && clean(&self.by_measurement) == clean(&other.by_measurement)
            && kinds(self) == kinds(other)
            && tags(self) == tags(other)
    }

    fn tag_values(&self, key: &str) -> Option<&FxHashMap<String, RoaringBitmap>> {
        self.by_tag.get(key)
    }

    /// Serialises the index, covering the first `series` ids.
    pub(crate) fn encode(&self, series: u64) -> Vec<u8> {
        let mut body = Vec::new();
        put_varint(&mut body, series);
        let mut bitmap = Vec::new();
        let mut put = |body: &mut Vec<u8>, b: &RoaringBitmap| {
            bitmap.clear();
            // Writing into a Vec cannot fail.
            let _ = b.serialize_into(&mut bitmap);
            put_varint(body, bitmap.len() as u64);
            body.extend_from_slice(&bitmap);
        };
        let mut measurements: Vec<_> = self.by_measurement.iter().collect();
        measurements.sort_by(|a, b| a.0.cmp(b.0));
        put_varint(&mut body, measurements.len() as u64);
        for (m, b) in measurements {
            put_text(&mut body, m);
            put(&mut body, b);
        }
        let mut kinds: Vec<_> = self.by_kind.iter().collect();
        kinds.sort_by_key(|(k, _)| **k);
        put_varint(&mut body, kinds.len() as u64);
        for (k, b) in kinds {
            body.push(*k);
            put(&mut body, b);
        }
        let mut pairs: Vec<(&String, &String, &RoaringBitmap)> = self
            .by_tag
            .iter()
            .flat_map(|(k, values)| values.iter().map(move |(v, b)| (k, v, b)))
            .collect();
        pairs.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        put_varint(&mut body, pairs.len() as u64);
        for (k, v, b) in pairs {
            put_text(&mut body, k);
            put_text(&mut body, v);
            put(&mut body, b);
        }
        FileKind::Tags.seal(&body)
    }

    /// Reads an index written by [`TagIndex::encode`]; `None` when the bytes are damaged or
    /// of another version (the caller rebuilds). Returns the index and how many series it
    /// covers.
    pub(crate) fn decode(path: &Path, bytes: &[u8]) -> Option<(TagIndex, u64)> {
        let (_, body) = FileKind::Tags.unseal(path, bytes).ok()?;
        let mut r = Reader::new(body);
        let series = r.varint().ok()?;
        let bitmap = |r: &mut Reader<'_>| -> Option<RoaringBitmap> { RoaringBitmap::deserialize_from(r.prefixed().ok()?).ok() };
        let text = |r: &mut Reader<'_>| -> Option<String> { String::from_utf8(r.prefixed().ok()?.to_vec()).ok() };
        let mut index = TagIndex::default();
        for _ in 0..r.len(body.len()).ok()? {
            let m = text(&mut r)?;
            let b = bitmap(&mut r)?;
            index.all |= &b;
            index.by_measurement.insert(m, b);
        }
        for _ in 0..r.len(body.len()).ok()? {
            let k = r.u8().ok()?;
            index.by_kind.insert(k, bitmap(&mut r)?);
        }
        for _ in 0..r.len(body.len()).ok()? {
            let k = text(&mut r)?;
            let v = text(&mut r)?;
            index.by_tag.entry(k).or_default().insert(v, bitmap(&mut r)?);
        }
        (r.is_empty() && index.all.len() == series && (series == 0 || index.all.max() == Some(series as u32 - 1)))
            .then_some((index, series))
    }

    /// Loads `<dir>/TAGS` and brings it up to date with `keys` (the catalog, in id order),
    /// or rebuilds it when the file is missing or unusable. Returns the index and how many
    /// series the file covered (0 when rebuilt).
    pub(crate) fn load_or_rebuild(dir: &Path, keys: &[std::sync::Arc<SeriesKey>]) -> Result<(TagIndex, u64)> {
        let path = FileKind::Tags.path(dir);
        let loaded = io::read_file_if_exists(&path)?.and_then(|b| TagIndex::decode(&path, &b));
        let (mut index, covered) = match loaded {
            Some((index, covered)) if covered <= keys.len() as u64 => (index, covered),
            _ => (TagIndex::default(), 0),
        };
        for (id, key) in keys.iter().enumerate().skip(covered as usize) {
            index.insert(id as SeriesId, key);
        }
        Ok((index, covered))
    }
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_singleton_bitmap_grows_like_any_other() {
        let mut bitmap = singleton(70_000);
        assert_eq!(bitmap.iter().collect::<Vec<_>>(), vec![70_000]);
        bitmap.insert(3);
        bitmap.insert(1 << 30);
        assert_eq!(bitmap.iter().collect::<Vec<_>>(), vec![3, 70_000, 1 << 30]);
        let mut index = TagIndex::default();
        for (id, key) in keys().iter().enumerate() {
            index.insert(id as SeriesId, key);
        }
        let a = index.tag_values("host").unwrap();
        assert_eq!(a["a"].iter().collect::<Vec<_>>(), vec![0, 3]);
        assert_eq!(a["b"].iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(index.by_measurement["cpu"].len(), 2);
    }

    fn keys() -> Vec<Arc<SeriesKey>> {
        vec![
            Arc::new(SeriesKey::new(SeriesKind::Metric, "cpu", [("host", "a"), ("region", "eu")]).unwrap()),
            Arc::new(SeriesKey::new(SeriesKind::Metric, "cpu", [("host", "b"), ("region", "us")]).unwrap()),
            Arc::new(SeriesKey::new(SeriesKind::Log, "log", [("level", "ERROR")]).unwrap()),
            Arc::new(SeriesKey::new(SeriesKind::Metric, "mem", [("host", "a")]).unwrap()),
        ]
    }

    #[test]
    fn persists_and_catches_up_with_the_catalog() {
        let dir = tempfile::tempdir().unwrap();
        let all = keys();
        let (index, covered) = TagIndex::load_or_rebuild(dir.path(), &all[..3]).unwrap();
        assert_eq!(covered, 0, "no file yet");
        io::Fs::default()
            .write_file_atomic(&FileKind::Tags.path(dir.path()), &index.encode(3))
            .unwrap();
        let (index, covered) = TagIndex::load_or_rebuild(dir.path(), &all).unwrap();
        assert_eq!(covered, 3, "the stored file is used and extended");
        let hosts_a: Vec<u32> = index
            .select(None, None, Some(&TagPredicate::eq("host", "a")))
            .unwrap()
            .iter()
            .collect();
        assert_eq!(hosts_a, vec![0, 3]);
        assert_eq!(index.select(Some(SeriesKind::Log), None, None).unwrap().len(), 1);
        // A damaged file is rebuilt, not trusted.
        let mut bytes = std::fs::read(FileKind::Tags.path(dir.path())).unwrap();
        let last = bytes.len() - 5;
        bytes[last] ^= 1;
        std::fs::write(FileKind::Tags.path(dir.path()), &bytes).unwrap();
        let (index, covered) = TagIndex::load_or_rebuild(dir.path(), &all).unwrap();
        assert_eq!(covered, 0, "rebuilt");
        assert_eq!(index.len(), 4);
    }
}
