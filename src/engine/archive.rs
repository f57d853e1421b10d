//! Archive and restore in the engine.
//!
//! Archive: flush (so the months' rows are all in segments), pack the months' segments and
//! the catalog slice into one file (`lifecycle::archive`), read it back whole, then, under
//! the flush lock, drop the months from the manifest, the read state and the full-text
//! index. The segment files go when the last snapshot holding them drops. A rerun after a
//! kill between the rename and the manifest write finds its own archive in place and
//! finishes.
//!
//! Archive also copies the objects (large diffs) the months' commits name into the file;
//! they stay in the store's object directory, where `annals verify --repair` removes the
//! ones no remaining commit names (removing them here could race with a writer storing
//! the same bytes again).
//!
//! Restore: check the archive whole (index, names, every entry's length and crc32, every
//! object's sha256) and refuse it unless its series match this store's catalog and its
//! months hold no segments; only then write the objects and the segment files, verify each
//! segment like `annals verify`, index their text, and publish them through the manifest.

use super::Inner;
use super::publish::Change;
use crate::error::{Error, Result};
use crate::files::FileKind;
use crate::lifecycle::archive::{self, ArchivedSeries};
use crate::lifecycle::{ArchiveReport, RestoreReport};
use crate::manifest::Manifest;
use crate::manifest::SegmentMeta;
use crate::model::{FieldValue, SeriesId};
use crate::segment::SegmentReader;
use crate::time::Month;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

impl Inner {
    pub(crate) fn archive(&self, before: Month, out: Option<&Path>, progress: &mut dyn FnMut(u64, u64)) -> Result<ArchiveReport> {
        let started = Instant::now();
        let _one_at_a_time = self.background.lifecycle.lock();
        self.check_writable()?;
        // Roll the finished days up first: their summaries stay when their detail leaves.
        self.summarize_locked(&|| false)?;
        self.flush()?;
        let metas: Vec<SegmentMeta> = {
            let flush = self.published.flush.lock();
            flush.manifest.segments.iter().filter(|s| s.month < before).cloned().collect()
        };
        if metas.is_empty() {
            return Err(Error::Refused {
                reason: format!("nothing to archive: no month before {before} holds data"),
            });
        }
        let months: Vec<Month> = metas.iter().map(|s| s.month).collect::<BTreeSet<_>>().into_iter().collect();
        let (first, last) = (months[0], months[months.len() - 1]);
        let path = match out {
            Some(p) => p.to_path_buf(),
            None if first == last => FileKind::Archive.path(&self.dir).join(format!("{first}.annarc")),
            None => FileKind::Archive.path(&self.dir).join(format!("{first}_{last}.annarc")),
        };
        let total: u64 = metas.iter().map(|m| m.file_len).sum();
        let (archive_bytes, written) = if path.exists() {
            // A run killed after its archive was renamed into place but before the months
            // left the manifest leaves the file behind; a rerun finishes that run.
            self.leftover_archive(&path, &metas)?
        } else {
            let series = self.catalog_slice(&metas);
            let object_keys = self.object_keys(&metas)?;
            let objects = &self.objects;
            let mut done = 0;
            let sources: Vec<(PathBuf, SegmentMeta)> = metas.iter().map(|m| (m.path(&self.data_dir), m.clone())).collect();
            let contents = archive::ArchiveContents {
                series,
                object_keys: object_keys.into_iter().collect(),
                objects: &|key: &str| objects.get_if_present(key),
            };
            let written = archive::write(&self.fs, &path, &sources, contents, self.options.clock.now_ns(), &mut |bytes| {
                done += bytes;
                progress(done, total);
            })?;
            // Read it back whole before the data leaves the store.
            let checked = archive::read_index(&path).and_then(|index| archive::verify(&path, &index, None, None));
            if let Err(e) = checked {
                let _ = self.fs.remove_file(&path);
                return Err(e);
            }
            written
        };

        {
            let mut flush = self.published.flush.lock();
            let now: Vec<SegmentMeta> = flush.manifest.segments.iter().filter(|s| s.month < before).cloned().collect();
            if now != metas {
                drop(flush);
                let _ = self.fs.remove_file(&path);
                return Err(Error::Refused {
                    reason: format!(
                        "rows for months before {before} arrived while archiving; nothing was removed and the archive was deleted, run it again"
                    ),
                });
            }
            let change = Change {
                removed: metas.iter().map(SegmentMeta::id).collect(),
                edit: Some(Box::new(|manifest: &mut Manifest| manifest.pinned.retain(|m| *m >= before))),
                ..Change::default()
            };
            self.publish(&mut flush, change, |flush, _| {
                for month in &months {
                    // The index is derived data: one that cannot be deleted now is an
                    // orphan, which the next open removes.
                    let _ = flush.text.drop_month(*month);
                }
                Ok(())
            })?;
        }
        for month in &months {
            let _ = self.fs.remove_empty_dir(&self.data_dir.join(month.to_string()));
        }
        Ok(ArchiveReport {
            path,
            months: months.iter().map(|m| m.to_string()).collect(),
            segments: metas.len(),
            rows: metas.iter().map(|m| m.rows).sum(),
            points: metas.iter().map(|m| m.points).sum(),
            segment_bytes: total,
            archive_bytes,
            objects: written.objects.len(),
            object_bytes: written.objects.iter().map(|o| o.raw_len).sum(),
            missing_objects: written.missing_objects,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The size and index of the archive at `path` when it holds exactly the segments
    /// `metas` and reads back whole: what a run killed between renaming its archive into
    /// place and publishing the manifest left. Any other file there is refused, untouched.
    fn leftover_archive(&self, path: &Path, metas: &[SegmentMeta]) -> Result<(u64, archive::ArchiveIndex)> {
        let refused = |why: &str| Error::Refused {
            reason: format!("{} already exists{why}; move it or choose another output file", path.display()),
        };
        let Ok(index) = archive::read_index(path) else {
            return Err(refused(" and is not an archive"));
        };
        let mut archived: Vec<Option<SegmentMeta>> = index.entries.iter().map(|e| e.segment_meta()).collect();
        let mut wanted: Vec<Option<SegmentMeta>> = metas.iter().cloned().map(Some).collect();
        archived.sort_by_key(|m| m.as_ref().map(SegmentMeta::id));
        wanted.sort_by_key(|m| m.as_ref().map(SegmentMeta::id));
        if archived != wanted {
            return Err(refused(" and holds other segments than the months to archive"));
        }
        archive::verify(path, &index, None, None)?;
        let len = std::fs::metadata(path).map_err(|e| Error::io("stat", path, e))?.len();
        Ok((len, index))
    }

    /// Keys of the objects the file rows of the segments `metas` name (their
    /// `diff_object` column), read from the segments alone.
    fn object_keys(&self, metas: &[SegmentMeta]) -> Result<BTreeSet<String>> {
        let state = self.published.state.read().clone();
        let mut keys = BTreeSet::new();
        for segment in state.segments.iter().filter(|s| metas.contains(s.meta())) {
            let Some(field) = segment.fields().iter().position(|(name, _)| &**name == "diff_object") else {
                continue;
            };
            let field = [field as u32];
            // The file-row series of this segment (taken before reading, so the catalog's
            // lock is not held across decoding).
            let diff_series: Vec<SeriesId> = {
                let catalog = self.writes.catalog.read();
                segment
                    .series_ids()
                    .filter(|&id| catalog.get(id).is_some_and(|k| k.holds_diffs()))
                    .collect()
            };
            for id in diff_series {
                let Some(blocks) = segment.series(id)? else { continue };
                for block in &blocks.blocks {
                    let chunk = segment.read_block(id, block, Some(&field))?;
                    for column in chunk.columns.iter().filter(|c| &*c.name == "diff_object") {
                        keys.extend((0..chunk.len()).filter_map(|row| match column.value(row) {
                            Some(FieldValue::Str(key)) => Some(key),
                            _ => None,
                        }));
                    }
                }
            }
        }
        Ok(keys)
    }

    /// Every series the segments hold, with its key.
    fn catalog_slice(&self, metas: &[SegmentMeta]) -> Vec<ArchivedSeries> {
        let state = self.published.state.read().clone();
        let mut ids = roaring::RoaringBitmap::new();
        for segment in state.segments.iter().filter(|s| metas.contains(s.meta())) {
            ids |= segment.series_set();
        }
        let catalog = self.writes.catalog.read();
        ids.iter()
            .filter_map(|id| catalog.get(id).map(|key| ArchivedSeries::of(id, key)))
            .collect()
    }

    pub(crate) fn restore(&self, path: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<RestoreReport> {
        let started = Instant::now();
        let index = archive::read_index(path)?;
        // Everything is checked before anything is written.
        archive::verify(path, &index, None, None)?;
        let mut metas = Vec::with_capacity(index.entries.len());
        for entry in &index.entries {
            metas.push(
                entry
                    .segment_meta()
                    .ok_or_else(|| Error::malformed(path, entry.offset, format!("entry {:?} has no valid month", entry.name)))?,
            );
        }
        let months: Vec<Month> = metas.iter().map(|m| m.month).collect::<BTreeSet<_>>().into_iter().collect();

        let _one_at_a_time = self.background.lifecycle.lock();
        self.check_writable()?;
        self.check_catalog_slice(path, &index.series)?;
        self.flush()?;
        self.refuse_live_months(&months)?;

        let total: u64 = metas.iter().map(|m| m.file_len).sum();
        let mut done = 0;
        let mut written: Vec<PathBuf> = Vec::new();
        let cleanup = |written: &[PathBuf]| self.remove_unpublished(written.iter().map(|p| p.as_path()));
        let objects = &self.objects;
        let mut objects_written = 0;
        let outcome = (|| -> Result<Vec<Arc<SegmentReader>>> {
            archive::verify(
                path,
                &index,
                Some(&mut |entry, bytes| {
                    let target = self.data_dir.join(&entry.name);
                    if let Some(dir) = target.parent() {
                        self.fs.create_dir_durable(dir)?;
                    }
                    self.fs.write_file_atomic(&target, bytes)?;
                    written.push(target);
                    done += bytes.len() as u64;
                    progress(done, total);
                    Ok(())
                }),
                // Objects go first in effect: they are written before the segments that
                // name them are published, so a failure leaves at most orphans.
                Some(&mut |_key, bytes| {
                    objects.put(bytes)?;
                    objects_written += 1;
                    Ok(())
                }),
            )?;
            metas
                .iter()
                .map(|meta| {
                    let reader = SegmentReader::open(&meta.path(&self.data_dir), meta)?;
                    reader.verify()?;
                    Ok(Arc::new(reader.with_cache(self.cache.clone())))
                })
                .collect()
        })();
        let readers = match outcome {
            Ok(r) => r,
            Err(e) => {
                cleanup(&written);
                return Err(e);
            }
        };

        let published = (|| -> Result<u64> {
            let mut flush = self.published.flush.lock();
            self.check_writable()?;
            if let Some(month) = months.iter().find(|m| flush.manifest.segments.iter().any(|s| s.month == **m)) {
                return Err(Error::Refused {
                    reason: format!("rows for {month} arrived while restoring; nothing was restored, run it again"),
                });
            }
            let last_seq = flush.manifest.last_seq.max(metas.iter().map(|m| m.max_seq).max().unwrap_or(0));
            let next_generation = metas.iter().map(|m| m.generation).max().unwrap_or(0) + 1;
            // The text index first: if the manifest write then fails, it is an orphan the
            // next open removes.
            let mut indexed = 0;
            {
                let catalog = self.writes.catalog.read();
                let texts = crate::text::text_series(&catalog);
                for month in &months {
                    flush.text.drop_month(*month)?;
                    indexed += flush.text.catch_up(*month, &readers, &catalog, &texts, last_seq)?.rows;
                }
            }
            flush.text.close_writers_except(&[])?;
            let change = Change {
                added: readers.clone(),
                edit: Some(Box::new(|manifest: &mut Manifest| {
                    manifest.next_generation = manifest.next_generation.max(next_generation);
                    manifest.last_seq = last_seq;
                    // Restored on purpose: retention leaves these months alone until they
                    // are archived again.
                    manifest.pinned.extend(months.iter().copied());
                })),
                ..Change::default()
            };
            self.publish(&mut flush, change, |_, _| Ok(()))?;
            Ok(indexed)
        })();
        let indexed = match published {
            Ok(n) => n,
            Err(e) => {
                drop(readers);
                cleanup(&written);
                return Err(e);
            }
        };
        Ok(RestoreReport {
            path: path.to_path_buf(),
            months: months.iter().map(|m| m.to_string()).collect(),
            segments: metas.len(),
            rows: metas.iter().map(|m| m.rows).sum(),
            points: metas.iter().map(|m| m.points).sum(),
            text_records_indexed: indexed,
            objects: objects_written,
            missing_objects: index.missing_objects.clone(),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// The archive's series must be this store's series under the same ids.
    fn check_catalog_slice(&self, path: &Path, series: &[ArchivedSeries]) -> Result<()> {
        let catalog = self.writes.catalog.read();
        for s in series {
            let key = s
                .key()
                .ok_or_else(|| Error::malformed(path, 0, format!("series {} in the archive is not a valid series key", s.id)))?;
            match catalog.get(s.id) {
                Some(ours) if **ours == key => {}
                Some(ours) => {
                    return Err(Error::Refused {
                        reason: format!(
                            "the archive was written by another store: series {} is {key} in the archive but {ours} here",
                            s.id
                        ),
                    });
                }
                None => {
                    return Err(Error::Refused {
                        reason: format!(
                            "the archive was written by another store: series {} ({key}) is not in this store's catalog",
                            s.id
                        ),
                    });
                }
            }
        }
        Ok(())
    }

    fn refuse_live_months(&self, months: &[Month]) -> Result<()> {
        let flush = self.published.flush.lock();
        for month in months {
            if flush.manifest.segments.iter().any(|s| s.month == *month) {
                return Err(Error::Refused {
                    reason: format!(
                        "{month} already holds data (it was restored before, or written to after it was archived); restoring it would duplicate rows, so nothing was restored"
                    ),
                });
            }
        }
        Ok(())
    }
}
