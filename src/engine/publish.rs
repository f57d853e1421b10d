//! Publishing: the one way the store's make-up changes. Flush, compaction, archive,
//! restore, summary runs, retention and `optimize` describe what they changed as a
//! [`Change`]; [`Inner::publish`] applies it to a copy of the manifest, stores that
//! durably, then swaps in a read state with the same change and retires the readers of
//! the segments that left, all under the flush lock.
//!
//! Order, and what a failure leaves:
//! 1. the manifest is stored (temporary file, fsync, rename, directory fsync). A failure
//!    poisons the handle: the new manifest may or may not be on disk, so files it would
//!    list stay for the next open to sort out;
//! 2. `after_store` runs: full-text work that must follow the durable manifest (a flush
//!    commits its documents; archive and retention drop or rebuild months). A failure
//!    poisons the handle: what readers see would lag what is durable;
//! 3. the read state is swapped in one step, with the text store's current view; snapshots
//!    taken before keep the state they hold;
//! 4. readers of removed segments are retired: their files are deleted when the last
//!    snapshot holding them drops.

use super::{FlushState, Inner};
use crate::error::Result;
use crate::manifest::{Manifest, SegmentId};
use crate::read::{HeadRef, ReadState};
use crate::retention::Horizons;
use crate::segment::SegmentReader;
use std::collections::BTreeSet;
use std::sync::Arc;

/// An edit of the manifest beyond its segment lists.
pub(super) type ManifestEdit<'a> = Box<dyn FnOnce(&mut Manifest) + 'a>;

/// What one operation changes, published whole.
#[derive(Default)]
pub(super) struct Change<'a> {
    /// The segments (detail or summary) that leave the store. A flush gives the segments
    /// of all months it writes one generation, so a segment is named by all three.
    pub removed: BTreeSet<SegmentId>,
    /// New segments, opened; each goes to the list of its tier.
    pub added: Vec<Arc<SegmentReader>>,
    /// Further edits of the manifest (checkpoint, watermark, horizons, pinned months...).
    pub edit: Option<ManifestEdit<'a>>,
    /// A frozen head whose rows are now in `added` (a flush).
    pub flushed_head: Option<HeadRef>,
    /// The retention horizons now applied.
    pub horizons: Option<Arc<Horizons>>,
}

impl Inner {
    /// Publishes `change` (see the module documentation); the caller holds the flush lock,
    /// whose state is `flush`. Nothing is stored when the manifest does not change (a
    /// text-only change).
    pub(super) fn publish(
        &self,
        flush: &mut FlushState,
        change: Change<'_>,
        after_store: impl FnOnce(&mut FlushState, &ReadState) -> Result<()>,
    ) -> Result<()> {
        self.check_writable()?;
        let Change {
            removed,
            added,
            edit,
            flushed_head,
            horizons,
        } = change;
        let mut manifest = flush.manifest.clone();
        manifest.segments.retain(|s| !removed.contains(&s.id()));
        manifest.summaries.retain(|s| !removed.contains(&s.id()));
        for reader in &added {
            manifest.list_mut(reader.meta().tier).push(reader.meta().clone());
        }
        manifest.segments.sort_by_key(|s| (s.month, s.generation));
        manifest.summaries.sort_by_key(|s| (s.tier, s.month, s.generation));
        if let Some(edit) = edit {
            edit(&mut manifest);
        }
        if manifest != flush.manifest {
            manifest.store(&self.fs, &self.dir).inspect_err(|e| self.poison(e))?;
            flush.manifest = manifest;
        }

        // Only publishers change the read state, and they hold the flush lock: the state
        // read here is still current when it is replaced below.
        let mut next = ReadState::clone(&self.published.state.read());
        let mut retired = Vec::new();
        for list in [&mut next.segments, &mut next.summaries] {
            let (gone, kept): (Vec<_>, Vec<_>) = list.drain(..).partition(|s| removed.contains(&s.meta().id()));
            *list = kept;
            retired.extend(gone);
        }
        for reader in added {
            next.list_mut(reader.meta().tier).push(reader);
        }
        next.segments.sort_by_key(|s| (s.meta().month, s.meta().generation));
        next.summaries.sort_by_key(|s| (s.meta().tier, s.meta().month, s.meta().generation));
        if let Some(head) = flushed_head {
            next.heads.retain(|h| !h.is(&head));
        }
        if let Some(horizons) = horizons {
            next.horizons = horizons;
        }
        after_store(flush, &next).inspect_err(|e| self.poison(e))?;
        next.text = Arc::new(flush.text.view());
        self.replace_read_state(next);
        self.retire(retired);
        Ok(())
    }

    /// Makes `next` what new snapshots see. Callers hold the flush lock.
    pub(super) fn replace_read_state(&self, next: ReadState) {
        *self.published.state.write() = Arc::new(next);
    }

    /// Marks segments the manifest no longer lists for deletion when their last reader
    /// drops, remembering them so `optimize` does not take them for orphans meanwhile.
    pub(super) fn retire(&self, segments: Vec<Arc<SegmentReader>>) {
        let mut retired = self.published.retired.lock();
        retired.retain(|w| w.strong_count() > 0);
        for segment in segments {
            segment.retire(&self.fs);
            retired.push(Arc::downgrade(&segment));
        }
    }
}
