//! Flush: freeze the head, write it as segments, publish them through the manifest, and
//! let the covered WAL files go.
//!
//! Order of durable steps (a crash between any two leaves a store that opens clean):
//! 1. rotate the WAL (the old file is fsync'd; the frozen head is exactly its records);
//! 2. append new series to the catalog file, fsync;
//! 3. write each month's segment to a temporary name, fsync, rename, fsync the directory;
//! 4. write the manifest (new segments, WAL checkpoint at the new file) atomically;
//! 5. commit the full-text index of each month touched (queued while step 3 ran), its
//!    payload recording the newest record it covers;
//! 6. publish the segments and text index to readers together, drop the frozen head,
//!    delete covered WAL files.
//!
//! Before step 4 the WAL still holds every row and unlisted segment files are removed on
//! open; after it, the segments do and obsolete WAL files are removed on open. A crash
//! between 4 and 5 leaves the text index behind the segments; open indexes the difference.

use super::publish::Change;
use super::{FlushReport, FlushState, Inner};
use crate::error::Result;
use crate::files::FileKind;
use crate::head::Head;
use crate::manifest::Manifest;
use crate::read::HeadRef;
use crate::read::ReadState;
use crate::segment::{EncodeOptions, FieldTable, SegmentReader, SeriesRows, WrittenSegment};
use crate::wal::{self, WalPosition};
use std::sync::Arc;

struct Frozen {
    head: HeadRef,
    /// Start of the WAL file opened by the rotation: replay begins here once the frozen
    /// head is in segments.
    checkpoint: WalPosition,
    /// Highest sequence number in the frozen head.
    seq_end: u64,
}

impl Inner {
    pub(crate) fn flush(&self) -> Result<FlushReport> {
        self.flush_if(|| true)
    }

    /// A flush for room: once this thread holds the flush lock, it flushes only if the
    /// active head is still at its share of the budget. Writers that found the head full
    /// together queue on the lock; without the check, each after the first would flush
    /// the few rows written since (a segment, a WAL rotation, their fsyncs).
    pub(crate) fn flush_for_room(&self) -> Result<FlushReport> {
        let share = self.options.memory().head_flush_bytes;
        self.flush_if(|| self.writes.writer.lock().head.bytes() >= share)
    }

    /// Flushes when `needed`, asked under the flush lock, says so.
    fn flush_if(&self, needed: impl FnOnce() -> bool) -> Result<FlushReport> {
        let mut flush = self.published.flush.lock();
        self.check_writable()?;
        if !needed() {
            return Ok(FlushReport::default());
        }
        let Some(frozen) = self.freeze()? else {
            return Ok(FlushReport::default());
        };
        self.write_frozen(&mut flush, &frozen).inspect_err(|e| {
            flush.text.rollback();
            self.poison(e);
        })
    }

    /// Swaps in an empty head and rotates the WAL; `None` when the head is empty.
    fn freeze(&self) -> Result<Option<Frozen>> {
        let mut w = self.writes.writer.lock();
        self.check_writable()?;
        if w.head.rows.read().is_empty() {
            return Ok(None);
        }
        let checkpoint = w.wal.rotate().inspect_err(|e| self.poison(e))?;
        let seq_end = w.next_seq - 1;
        // The rotation synced every record of the frozen head.
        self.mark_durable(w.lsn, seq_end);
        let head = std::mem::replace(&mut w.head, HeadRef::new(Head::new()));
        w.head_started = None;
        w.field_names.clear();
        // The active head is the last; it stays readable, frozen, until its flush publishes.
        let mut next = ReadState::clone(&self.published.state.read());
        next.heads.pop();
        next.heads.push(head.clone());
        next.heads.push(w.head.clone());
        self.replace_read_state(next);
        Ok(Some(Frozen { head, checkpoint, seq_end }))
    }

    fn write_frozen(&self, flush: &mut FlushState, frozen: &Frozen) -> Result<FlushReport> {
        let keys = self.writes.catalog.read().keys().to_vec();
        flush.catalog_file.persist(&keys)?;
        // The tag index is derived data: written after the catalog, rebuilt if lost.
        if flush.tags_persisted != keys.len() as u64 {
            let encoded = self.writes.catalog.read().tags().encode(keys.len() as u64);
            self.fs.write_file_atomic(&FileKind::Tags.path(&self.dir), &encoded)?;
            flush.tags_persisted = keys.len() as u64;
        }
        // The commit index is written before the manifest that lets the WAL go: a commit
        // row is always either in the file or replayed from the WAL.
        let commits_file = {
            let index = self.writes.commits.read();
            index.has_pending_up_to(frozen.seq_end).then(|| index.encode(frozen.seq_end))
        };
        let commits_to_persist = commits_file.is_some();
        if let Some(encoded) = commits_file {
            self.fs.write_file_atomic(&FileKind::Commits.path(&self.dir), &encoded)?;
        }

        // The frozen head stays readable until the flush publishes: the flush reads it one
        // series at a time rather than copying it.
        let head = frozen.head.rows.read();
        let by_month = head.flush_months();
        // Queue the text rows first: the index's threads work while segments are encoded.
        let mut text_months = Vec::new();
        {
            let catalog = self.writes.catalog.read();
            let months_with_text = by_month
                .values()
                .filter(|series| series.iter().any(|(_, kind)| !kind.text_fields().is_empty()))
                .count();
            for (&month, series) in &by_month {
                let texts_of = |id| head.flush_texts(id, month);
                if flush.text.add_series(month, series, texts_of, &catalog, months_with_text)? > 0 {
                    text_months.push(month);
                }
            }
        }
        let generation = flush.manifest.next_generation;
        let mut written: Vec<WrittenSegment> = Vec::with_capacity(by_month.len());
        for (&month, series) in &by_month {
            let source = SeriesRows {
                series,
                fields: FieldTable::from_fields(head.columns_of(series)),
                rows_of: |id| head.flush_rows(id, month),
            };
            written.push(crate::segment::write_segment(
                &self.fs,
                &self.data_dir,
                month,
                generation,
                frozen.seq_end,
                source,
                EncodeOptions::of(&self.options),
            )?);
        }

        // Rows for days already summarised make those days be summarised again.
        let late = self.late_days(flush.manifest.summary.watermark, &head);
        let report = FlushReport {
            rows: head.rows(),
            points: head.points(),
            segments: written.len(),
            bytes: written.iter().map(|w| w.meta.file_len).sum(),
        };
        drop(head);
        let readers = written
            .iter()
            .map(|w| SegmentReader::open(&w.path, &w.meta).map(|r| Arc::new(r.with_cache(self.cache.clone()))))
            .collect::<Result<Vec<_>>>()?;
        let (seq_end, checkpoint, catalog_series) = (frozen.seq_end, frozen.checkpoint, keys.len() as u32);
        let change = Change {
            added: readers,
            flushed_head: Some(frozen.head.clone()),
            edit: Some(Box::new(move |manifest: &mut Manifest| {
                manifest.next_generation = generation + 1;
                manifest.last_seq = manifest.last_seq.max(seq_end);
                manifest.wal_checkpoint = checkpoint;
                manifest.catalog_series = catalog_series;
                manifest.summary.dirty_days.extend(late);
            })),
            ..Change::default()
        };
        self.publish(flush, change, |flush, _| {
            flush.text.commit(&text_months, seq_end)?;
            flush.text.close_writers_except(&text_months)
        })?;
        if commits_to_persist {
            self.writes.commits.write().mark_flushed(seq_end);
        }
        for (file_no, path, _) in wal::list_files(&self.wal_dir)? {
            if file_no < frozen.checkpoint.file_no {
                self.fs.remove_file(&path)?;
            }
        }
        Ok(report)
    }
}
