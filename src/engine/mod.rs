//! The embedded store: [`Engine`] opens a data directory, writes batches through the WAL
//! into the head, flushes the head into monthly segments, and hands out [`Snapshot`]s.
//!
//! `Inner` is split by role: `writes` (the write path: `write`, `sync_to`), `published`
//! (the manifest and read state, changed only by `publish.rs`), `background` (the
//! flusher and lifecycle threads). Files by role: `flush`, `compact`, `archive`,
//! `summary`, `retention` prepare changes and publish them; `recovery` opens; `snapshot`
//! reads; `stats` reports.
//!
//! Locks, in the order they may be taken: `lifecycle` → `flush` → `writer` → `catalog` →
//! a head → `sync` → `state`. Readers take only `state` (briefly, to clone an `Arc`), a
//! head's read lock, and `catalog`'s read lock.

mod archive;
mod compact;
mod flush;
mod publish;
mod recovery;
mod retention;
mod snapshot;
mod stats;
mod summary;

pub use recovery::RecoveryReport;
pub use retention::{RetentionAction, RetentionReport, RuleHorizon};
pub use snapshot::Snapshot;
pub use stats::{KindStats, MonthStats, StorageWarning, StoreStats, TierStats};
pub use summary::SummaryReport;

use crate::cache::BlockCache;
use crate::catalog::{Catalog, CatalogFile};
use crate::commit_index::{CommitIndex, CommitLocation};
use crate::error::{Error, Result};
use crate::events::{Event, EventFilter, Subscription};
use crate::files::FileKind;
use crate::head::ApplyBatch;
use crate::io::DirLock;
use crate::lifecycle::{
    ArchiveListing, ArchiveReport, CompactionProgress, CompactionReport, OptimizeReport, PlannedCompaction, RestoreReport,
};
use crate::manifest::Manifest;
use crate::model::{Batch, CommitHash, SeriesId};
use crate::options::{Durability, Options};
use crate::read::{HeadRef, ReadState};
use crate::text::TextStore;
use crate::time::Month;
use crate::wal::WalWriter;
use parking_lot::{Condvar, Mutex, RwLock};
use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteReceipt {
    /// Sequence number of the batch's first row; row `i` has `first_seq + i`. For event
    /// kinds this is the row's record id.
    pub first_seq: u64,
    /// Rows written.
    pub rows: usize,
    /// Field values written.
    pub points: usize,
}

/// What a flush wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Rows moved from the head into segments.
    pub rows: u64,
    /// Field values moved.
    pub points: u64,
    /// Segment files written (one per month touched).
    pub segments: usize,
    /// Bytes of those files.
    pub bytes: u64,
}

/// An open store. Cheap to share between threads (`&Engine` is `Send + Sync`).
///
/// ```
/// use annals::{Batch, Engine, FieldValue, Options, ScanRequest, SeriesKey, SeriesSelector};
/// let dir = tempfile::tempdir().unwrap();
/// let engine = Engine::open(dir.path(), Options::default()).unwrap();
/// let cpu = SeriesKey::metric("cpu").unwrap().with_tag("host", "a").unwrap();
/// let mut batch = Batch::new();
/// batch.add_row(&cpu, 1_000, [("usage", FieldValue::F64(12.5))]).unwrap();
/// engine.write(&batch).unwrap();
/// let rows: Vec<_> = engine
///     .snapshot()
///     .scan(&ScanRequest { selector: SeriesSelector::measurement("cpu"), ..Default::default() })
///     .unwrap()
///     .collect::<Result<_, _>>()
///     .unwrap();
/// assert_eq!(rows[0].fields[0].1, FieldValue::F64(12.5));
/// engine.close().unwrap();
/// ```
pub struct Engine {
    inner: Arc<Inner>,
    flusher: Mutex<Option<JoinHandle<()>>>,
    compactor: Mutex<Option<JoinHandle<()>>>,
}

/// The open store, split by role so that each part of the engine touches only its own:
/// the write path (`writes`), what is durable and visible (`published`, changed only by
/// `publish`), and the background threads (`background`). What the handle was opened with
/// and whether it still takes writes are shared by all.
pub(crate) struct Inner {
    /// Where diffs over the inline limit are kept.
    objects: crate::objects::Objects,
    /// Every change to the disk goes through this.
    fs: crate::io::Fs,
    dir: PathBuf,
    data_dir: PathBuf,
    wal_dir: PathBuf,
    options: Options,
    _lock: DirLock,
    recovery: RecoveryReport,
    cache: Arc<BlockCache>,
    /// Why writes are refused since a failure (see `poison`).
    poison: Mutex<Option<String>>,
    poisoned: AtomicBool,
    closed: AtomicBool,
    writes: Writes,
    published: Published,
    background: Background,
    /// Subscribers of the store's events.
    events: crate::events::EventHub,
}

/// The write path: the WAL and the active head, the catalog, group commit and visibility.
struct Writes {
    writer: Mutex<Writer>,
    catalog: RwLock<Catalog>,
    sync: Mutex<SyncState>,
    synced: Condvar,
    /// Writers between entering `write` and appending to the WAL; a group-commit leader
    /// waits for them.
    appending: AtomicUsize,
    /// Rows with sequence numbers up to this are visible to new snapshots.
    visible_seq: AtomicU64,
    /// Horizons retention has applied or is applying: writes before them are refused.
    horizons: RwLock<Arc<crate::retention::Horizons>>,
    /// Every stored commit hash and where its row is; changed under the writer lock.
    commits: RwLock<CommitIndex>,
}

/// What is durable and what readers see: the manifest with the files it lists, and the
/// read state. Changed only through `Inner::publish`, under the flush lock.
struct Published {
    state: RwLock<Arc<ReadState>>,
    flush: Mutex<FlushState>,
    /// Segments replaced or archived whose files wait for their last reader.
    retired: Mutex<Vec<std::sync::Weak<crate::segment::SegmentReader>>>,
}

/// The background flusher and lifecycle thread, and the lock that serialises lifecycle
/// operations (compaction, archive, restore, summaries, retention): each plans from the
/// manifest and must not see another's half-done work.
struct Background {
    flusher: Mutex<FlusherState>,
    flusher_wake: Condvar,
    lifecycle: Mutex<()>,
    compactor: Mutex<CompactorState>,
    compactor_wake: Condvar,
    /// The summary run in progress, if any (flushes mark late rows against its target).
    summary_run: Mutex<Option<summary::SummaryRun>>,
    /// When storage warnings were last announced to subscribers.
    alarms: Mutex<AlarmState>,
}

/// Keeps storage warnings to subscribers few: a low disk is announced when it starts, a
/// retention refusal at most once a minute.
#[derive(Default)]
struct AlarmState {
    last_disk_check: Option<Instant>,
    low_disk: bool,
    last_refusal: Option<Instant>,
}

/// How often the flusher looks at free disk space while someone subscribes.
const DISK_CHECK_EVERY: Duration = Duration::from_secs(10);
/// Least time between two `retention_refused` warnings.
const REFUSAL_WARNING_EVERY: Duration = Duration::from_secs(60);

struct Writer {
    wal: WalWriter,
    /// Bytes appended to the WAL since open, over all files: the unit of `durable_lsn`.
    lsn: u64,
    next_seq: u64,
    head: HeadRef,
    head_started: Option<Instant>,
    /// Field names of the active head, so columns compare names by pointer.
    field_names: FxHashMap<String, Arc<str>>,
}

#[derive(Default)]
struct SyncState {
    durable_lsn: u64,
    syncing: bool,
}

struct FlushState {
    manifest: Manifest,
    catalog_file: CatalogFile,
    /// Series the `TAGS` file covers.
    tags_persisted: u64,
    /// The writable full-text indexes.
    text: TextStore,
}

#[derive(Default)]
struct CompactorState {
    stop: bool,
    last_error: Option<String>,
    /// When (by the clock) the background thread last applied retention.
    last_retention: Option<i64>,
}

#[derive(Default)]
struct FlusherState {
    stop: bool,
    wake: bool,
    last_error: Option<String>,
}

/// So that what takes a store can take an [`Engine`] or what wraps one
/// ([`crate::history::History`]).
impl AsRef<Engine> for Engine {
    fn as_ref(&self) -> &Engine {
        self
    }
}

impl Engine {
    /// Opens the store in `dir`, creating it if `options.create_if_missing`, and recovers:
    /// leftover temporary and unlisted segment files are removed and the WAL is replayed
    /// into the head. See [`Engine::recovery_report`].
    pub fn open(dir: impl AsRef<Path>, options: Options) -> Result<Engine> {
        options.validate()?;
        let inner = Arc::new(recovery::open(dir.as_ref(), options)?);
        let flusher = if inner.options.background_flush {
            let worker = inner.clone();
            Some(
                std::thread::Builder::new()
                    .name("annals-flush".into())
                    .spawn(move || worker.flusher_loop())
                    .map_err(|e| Error::io("spawn flush thread for", &inner.dir, e))?,
            )
        } else {
            None
        };
        let compactor = if inner.options.compaction.background || inner.options.retention.background {
            let worker = inner.clone();
            Some(
                std::thread::Builder::new()
                    .name("annals-compact".into())
                    .spawn(move || worker.compactor_loop())
                    .map_err(|e| Error::io("spawn compaction thread for", &inner.dir, e))?,
            )
        } else {
            None
        };
        Ok(Engine {
            inner,
            flusher: Mutex::new(flusher),
            compactor: Mutex::new(compactor),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The file system the store writes through (exports beside the store use it too, so
    /// fault injection reaches them).
    #[cfg(any(feature = "parquet", feature = "forward"))]
    pub(crate) fn fs(&self) -> &crate::io::Fs {
        &self.inner.fs
    }

    /// The store's object store (large diffs).
    pub(crate) fn objects(&self) -> &crate::objects::Objects {
        &self.inner.objects
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.options
    }

    /// What recovery did when the store was opened.
    pub fn recovery_report(&self) -> &RecoveryReport {
        &self.inner.recovery
    }

    /// Where the commit with `hash` is, if the store holds it (written, perhaps not yet
    /// visible to snapshots).
    pub(crate) fn commit_location(&self, hash: &CommitHash) -> Option<CommitLocation> {
        self.inner.writes.commits.read().get(hash)
    }

    /// Commits whose hash starts with the hex digits `prefix`, at most `limit`, by hash.
    pub(crate) fn commits_with_prefix(&self, prefix: &str, limit: usize) -> Vec<(CommitHash, CommitLocation)> {
        self.inner.writes.commits.read().find_prefix(prefix, limit)
    }

    /// Up to `limit` commits `keep` accepts, newest first by (timestamp, record id), from
    /// just below `below` down to timestamp `start`.
    pub(crate) fn commits_newest_below(
        &self,
        below: (i64, u64),
        start: i64,
        limit: usize,
        keep: impl FnMut(&CommitHash, &CommitLocation) -> bool,
    ) -> Vec<(CommitHash, CommitLocation)> {
        self.inner.writes.commits.read().newest_below(below, start, limit, keep)
    }

    /// Number of commits the store holds.
    pub fn commit_count(&self) -> usize {
        self.inner.writes.commits.read().len()
    }

    /// Writes a batch: one WAL record, acknowledged according to the durability mode, then
    /// visible to new snapshots as a whole.
    ///
    /// Fails without writing anything on invalid input or an exceeded limit, and on a full
    /// disk during the WAL append ([`Error::DiskFull`]; free space and retry). Any other
    /// failed WAL write, or a failed fsync or flush, poisons the handle: this and every
    /// later write fail until reopen.
    pub fn write(&self, batch: &Batch) -> Result<WriteReceipt> {
        self.inner.write(batch)
    }

    /// Writes the head to segment files now and lets the WAL files it covered go.
    pub fn flush(&self) -> Result<FlushReport> {
        self.inner.flush()
    }

    /// A consistent view of everything acknowledged so far. Later writes, flushes and
    /// compactions do not change what it sees; it holds the files and heads it needs.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.inner.clone())
    }

    /// Merges segments now, as the compaction policy asks (see
    /// [`crate::CompactionOptions`]): the small segments of the current month by tier, and
    /// every month that is over into one file. Concurrent writes, flushes and queries go
    /// on; snapshots taken before keep the files they read until dropped.
    ///
    /// ```
    /// use annals::{Batch, Engine, FieldValue, Options, SeriesKey};
    /// let dir = tempfile::tempdir().unwrap();
    /// let engine = Engine::open(dir.path(), Options::default()).unwrap();
    /// let cpu = SeriesKey::metric("cpu").unwrap();
    /// for t in 0..3 {
    ///     let mut batch = Batch::new();
    ///     batch.add_row(&cpu, t, [("usage", FieldValue::F64(t as f64))]).unwrap();
    ///     engine.write(&batch).unwrap();
    ///     engine.flush().unwrap(); // one segment per flush, in January 1970
    /// }
    /// let report = engine.compact().unwrap();
    /// assert_eq!(report.merged[0].input_segments, 3);
    /// assert_eq!(engine.stats().unwrap().segments, 1);
    /// ```
    pub fn compact(&self) -> Result<CompactionReport> {
        self.compact_with_progress(&mut |_| {})
    }

    /// [`Engine::compact`], calling `progress` as each merge advances.
    pub fn compact_with_progress(&self, progress: &mut dyn FnMut(&CompactionProgress)) -> Result<CompactionReport> {
        let closing = || self.inner.background.compactor.lock().stop;
        self.inner.compact(progress, &closing)
    }

    /// Makes the store as compact as it can be now: every month with more than one
    /// segment is merged into one (whatever the policy says), each month's full-text index
    /// is merged into one segment (flushes wait for that part), and files no manifest
    /// lists and no reader holds are removed.
    pub fn optimize(&self, progress: &mut dyn FnMut(&CompactionProgress)) -> Result<OptimizeReport> {
        let closing = || self.inner.background.compactor.lock().stop;
        self.inner.optimize(progress, &closing)
    }

    /// Rolls every UTC day that has been over for `retention.summarize_after` (and every
    /// day that received rows after it was rolled up) into hourly and daily summaries, and
    /// completed ISO weeks into weekly ones. Runs from the background thread too.
    pub fn summarize(&self) -> Result<SummaryReport> {
        let _one_at_a_time = self.inner.background.lifecycle.lock();
        let closing = || self.inner.background.compactor.lock().stop;
        self.inner.summarize_locked(&closing)
    }

    /// What [`Engine::apply_retention`] would drop now (by the clock in
    /// [`Options::clock`]), without changing anything.
    pub fn retention_plan(&self) -> Result<RetentionReport> {
        self.inner.retention_plan()
    }

    /// Summarises, then drops detail and summaries past their retention: whole months of
    /// files where every series is past its horizon, otherwise the month's segments are
    /// rewritten without the expired rows. From then on, writes older than a series'
    /// detail horizon are refused with [`Error::Refused`].
    pub fn apply_retention(&self) -> Result<RetentionReport> {
        let _one_at_a_time = self.inner.background.lifecycle.lock();
        let closing = || self.inner.background.compactor.lock().stop;
        self.inner.apply_retention_locked(&closing)
    }

    /// The merges [`Engine::compact`] would run now, without running them.
    pub fn compaction_plan(&self) -> Vec<PlannedCompaction> {
        self.inner.compaction_plan()
    }

    /// Moves every month before `before` out of the store into one archive file: `out`, or
    /// `<dir>/archive/<first>_<last>.annarc`. Rows of those months still in memory are
    /// flushed first; the file is read back whole before the months are dropped.
    /// `progress` gets (bytes packed, bytes to pack).
    ///
    /// ```
    /// use annals::{Batch, Engine, FieldValue, Month, Options, SeriesKey};
    /// let dir = tempfile::tempdir().unwrap();
    /// let engine = Engine::open(dir.path(), Options::default()).unwrap();
    /// let mut batch = Batch::new();
    /// batch.add_row(&SeriesKey::metric("cpu").unwrap(), 1_000, [("usage", FieldValue::F64(1.0))]).unwrap();
    /// engine.write(&batch).unwrap();
    /// let archived = engine.archive(Month::new(1970, 2).unwrap(), None, &mut |_, _| {}).unwrap();
    /// assert_eq!(archived.months, ["1970-01"]);
    /// assert_eq!(engine.stats().unwrap().rows, 0);
    /// let restored = engine.restore(&archived.path, &mut |_, _| {}).unwrap();
    /// assert_eq!((restored.rows, engine.stats().unwrap().rows), (1, 1));
    /// ```
    pub fn archive(&self, before: Month, out: Option<&Path>, progress: &mut dyn FnMut(u64, u64)) -> Result<ArchiveReport> {
        let report = self.inner.archive(before, out, progress)?;
        self.inner
            .events
            .publish(&crate::events::Event::ArchiveCompleted(crate::events::ArchiveCompleted {
                path: report.path.display().to_string(),
                months: report.months.clone(),
                rows: report.rows,
                bytes: report.archive_bytes,
            }));
        Ok(report)
    }

    /// Subscribes to the store's events (see [`crate::events`]): those `filter` takes, in a
    /// queue of `capacity` events that drops its oldest when full.
    pub fn subscribe(&self, filter: EventFilter, capacity: usize) -> Subscription {
        self.inner.events.subscribe(filter, capacity, None)
    }

    /// As [`Engine::subscribe`], calling `wake` after each event queued (for a consumer
    /// that waits on something other than [`Subscription::recv_timeout`], such as an async
    /// task).
    pub fn subscribe_with_wake(&self, filter: EventFilter, capacity: usize, wake: Box<dyn Fn() + Send + Sync>) -> Subscription {
        self.inner.events.subscribe(filter, capacity, Some(wake))
    }

    /// Publishes an event to the store's subscribers (the server announces the end of its
    /// long operations with it; trend analysis its alerts).
    pub fn publish_event(&self, event: &Event) {
        self.inner.events.publish(event);
    }

    /// Brings an archive's months back. The archive is checked whole first (every entry's
    /// length and checksum, entry names, its series against this store's catalog); a month
    /// that already holds data is refused, so restoring twice cannot duplicate rows.
    pub fn restore(&self, archive: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<RestoreReport> {
        self.inner.restore(archive, progress)
    }

    /// The archives in `<dir>/archive/`, oldest month first. A damaged file is listed with
    /// its error instead of its contents.
    pub fn archives(&self) -> Result<Vec<ArchiveListing>> {
        let dir = FileKind::Archive.path(&self.inner.dir);
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut out: Vec<_> = crate::io::list_dir(&dir)?
            .into_iter()
            .filter(|e| !e.is_dir && e.name.ends_with(".annarc"))
            .map(|e| match crate::lifecycle::archive_info(&e.path) {
                Ok(info) => ArchiveListing::Readable(info),
                Err(err) => ArchiveListing::Unreadable {
                    path: e.path.clone(),
                    error: err.to_string(),
                },
            })
            .collect();
        out.sort_by_key(|listing| match listing {
            ArchiveListing::Readable(info) => (info.months.first().cloned().unwrap_or_default(), info.path.clone()),
            ArchiveListing::Unreadable { path, .. } => (String::new(), path.clone()),
        });
        Ok(out)
    }

    /// A `low_disk` warning when the store's file system has less than
    /// [`Options::low_disk_bytes`] free; cheap enough to poll.
    pub fn storage_warning(&self) -> Result<Option<StorageWarning>> {
        let free = crate::io::available_bytes(&self.inner.dir)?;
        Ok(stats::low_disk(free, self.inner.options.low_disk_bytes))
    }

    /// Sizes and counts of the store.
    pub fn stats(&self) -> Result<StoreStats> {
        stats::collect(&self.inner)
    }

    /// Flushes the head and releases the store. Dropping an engine without closing it is
    /// safe too: its unflushed rows are replayed from the WAL on the next open.
    pub fn close(self) -> Result<()> {
        self.stop_compactor();
        self.stop_flusher();
        let result = if self.inner.is_poisoned() {
            Err(self.inner.poisoned_error())
        } else {
            self.inner.flush().map(|_| ())
        };
        // Let the text index's merges finish, so the next open starts from few segments.
        let result = result.and_then(|()| self.inner.published.flush.lock().text.close_writers_except(&[]));
        self.inner.closed.store(true, Ordering::SeqCst);
        result
    }

    /// Stops the background compactor, cancelling a merge in progress (its temporary file
    /// is removed; the inputs stay).
    fn stop_compactor(&self) {
        self.inner.background.compactor.lock().stop = true;
        self.inner.background.compactor_wake.notify_all();
        if let Some(handle) = self.compactor.lock().take() {
            // The compactor only returns or panics; a panic leaves at worst an unlisted
            // file, which the next open removes.
            let _ = handle.join();
        }
    }

    fn stop_flusher(&self) {
        {
            let mut st = self.inner.background.flusher.lock();
            st.stop = true;
        }
        self.inner.background.flusher_wake.notify_all();
        if let Some(handle) = self.flusher.lock().take() {
            // The flusher only returns or panics; a panic there has already poisoned the
            // store through its own error handling, or left it consistent on disk.
            let _ = handle.join();
        }
    }

    /// The error of the last failed background flush or compaction, if any.
    pub fn background_error(&self) -> Option<String> {
        let flush = self.inner.background.flusher.lock().last_error.clone();
        flush.or_else(|| self.inner.background.compactor.lock().last_error.clone())
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("dir", &self.inner.dir)
            .field("visible_seq", &self.inner.writes.visible_seq.load(Ordering::SeqCst))
            .field("poisoned", &self.inner.is_poisoned())
            .finish_non_exhaustive()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_compactor();
        self.stop_flusher();
        self.inner.closed.store(true, Ordering::SeqCst);
    }
}

impl Inner {
    fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    fn poisoned_error(&self) -> Error {
        Error::Poisoned {
            cause: self.poison.lock().clone().unwrap_or_else(|| "unknown failure".into()),
        }
    }

    /// Marks the handle unusable for writes after a failed write, fsync or flush.
    /// Removes files written for a change that did not publish. When the manifest write
    /// itself failed (which poisons the store), the new manifest may have reached the disk
    /// and list them, so they stay: the next open removes whichever are unlisted.
    fn remove_unpublished<'a>(&self, paths: impl IntoIterator<Item = &'a Path>) {
        if self.is_poisoned() {
            return;
        }
        for path in paths {
            // A failure leaves an unlisted file, which the next open removes.
            let _ = self.fs.remove_file(path);
        }
    }

    fn poison(&self, cause: &Error) {
        {
            let mut p = self.poison.lock();
            if p.is_none() {
                *p = Some(cause.to_string());
            }
        }
        let first = !self.poisoned.swap(true, Ordering::SeqCst);
        self.writes.synced.notify_all();
        if first {
            // Staged events stay: a writer whose write was durable before the failure still
            // releases its own; those of the failed writes are never released, since no
            // later write succeeds.
            self.events
                .publish(&crate::events::Event::StorageWarning(crate::events::StorageAlarm {
                    kind: "poisoned".into(),
                    message: format!("the store refuses writes until it is reopened: {cause}"),
                    free_bytes: None,
                    threshold_bytes: None,
                }));
        }
    }

    fn check_writable(&self) -> Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::Closed);
        }
        if self.is_poisoned() {
            return Err(self.poisoned_error());
        }
        Ok(())
    }

    fn write(&self, batch: &Batch) -> Result<WriteReceipt> {
        self.check_writable()?;
        if batch.is_empty() {
            return Ok(WriteReceipt {
                first_seq: self.writes.visible_seq.load(Ordering::SeqCst) + 1,
                rows: 0,
                points: 0,
            });
        }
        self.options.limits.check_batch(batch)?;
        self.make_head_room()?;
        self.writes.appending.fetch_add(1, Ordering::SeqCst);
        let appended = self.append(batch);
        self.writes.appending.fetch_sub(1, Ordering::SeqCst);
        let (lsn, receipt, head_bytes) = appended.inspect_err(|e| self.announce_refusal(e))?;
        let last_seq = receipt.first_seq + receipt.rows as u64 - 1;
        match self.options.durability {
            Durability::None => {
                self.writes.visible_seq.fetch_max(last_seq, Ordering::SeqCst);
            }
            Durability::Sync => self.sync_to(lsn, Duration::ZERO)?,
            Durability::Group { max_delay } => self.sync_to(lsn, max_delay)?,
        }
        self.events.release_through(lsn);
        if head_bytes >= self.options.memory().head_flush_bytes {
            if self.options.background_flush {
                self.wake_flusher();
            } else if let Err(e) = self.flush_for_room() {
                // The batch is durable: it is acknowledged. A failed flush poisons the
                // handle, so the next write reports it.
                self.background.flusher.lock().last_error = Some(e.to_string());
            }
        }
        Ok(receipt)
    }

    /// Keeps memory within the heads' share of the budget: when the head being written and
    /// the one a flush is still writing hold it all (the background flusher is behind),
    /// the writer waits for that flush and flushes the head itself.
    fn make_head_room(&self) -> Result<()> {
        let shares = self.options.memory();
        let active = self.writes.writer.lock().head.bytes();
        if active < shares.head_flush_bytes {
            return Ok(());
        }
        let flushing: usize = {
            let state = self.published.state.read();
            // Every head but the last (the one being written) is frozen, being flushed.
            let frozen = state.heads.len().saturating_sub(1);
            state.heads[..frozen].iter().map(HeadRef::bytes).sum()
        };
        if active + flushing >= shares.heads_max_bytes {
            self.flush_for_room()?;
        }
        Ok(())
    }

    /// Appends the batch to the WAL and the head; returns (lsn after it, receipt, head bytes).
    /// The series it creates are reserved in the catalog first and created only once the
    /// batch is in the WAL, so a refused or failed append leaves the catalog as it was.
    fn append(&self, batch: &Batch) -> Result<(u64, WriteReceipt, usize)> {
        let mut w = self.writes.writer.lock();
        self.check_writable()?;
        self.check_horizons(batch)?;
        let commits = crate::model::commit::commit_rows(
            batch.series.len(),
            |i| batch.series[i].holds_commits(),
            &batch.field_names,
            &batch.rows,
            &batch.values,
        )?;
        self.check_new_commits(&commits)?;
        let reservation = self.writes.catalog.read().reserve(&batch.series, self.options.limits.max_series)?;
        let first_seq = w.next_seq;
        let ids: Vec<SeriesId> = reservation.ids.iter().map(|(id, _)| *id).collect();
        let appended = w
            .wal
            .append_batch(first_seq, &reservation.new_series, &ids, batch, self.options.limits.max_batch_bytes);
        let bytes = match appended {
            Ok(bytes) => bytes,
            Err(failed) => {
                // A batch refused as too large, or a full disk that left the log whole,
                // fails this batch only: the caller can free space and retry. Anything else
                // leaves the log in doubt.
                if !failed.fails_only_this_batch() {
                    self.poison(&failed.error);
                }
                return Err(failed.error);
            }
        };
        if !reservation.new_series.is_empty() {
            self.writes.catalog.write().commit(&reservation);
        }
        if !commits.is_empty() {
            self.writes
                .commits
                .write()
                .insert_rows(commits, &batch.rows, first_seq, |s| reservation.ids[s as usize].0);
        }
        w.lsn += bytes;
        w.next_seq += batch.len() as u64;
        let names: Vec<Arc<str>> = batch.field_names.iter().map(|n| w.intern(n)).collect();
        let head_bytes = w.head.text.bytes() + {
            let mut head = w.head.rows.write();
            head.apply(&ApplyBatch {
                first_seq,
                series: &reservation.ids,
                field_names: &names,
                rows: &batch.rows,
                values: &batch.values,
            });
            head.bytes()
        };
        if w.head_started.is_none() {
            w.head_started = Some(Instant::now());
        }
        if self.events.has_subscribers()
            && let Some(update) = crate::events::DataUpdate::of_batch(batch, first_seq)
        {
            // Under the writer lock: staged in commit order.
            self.events.stage(w.lsn, update);
        }
        Ok((
            w.lsn,
            WriteReceipt {
                first_seq,
                rows: batch.len(),
                points: batch.point_count(),
            },
            head_bytes,
        ))
    }

    /// Refuses a batch whose commits the store holds already, or that holds one twice.
    fn check_new_commits(&self, commits: &[(usize, CommitHash)]) -> Result<()> {
        if commits.is_empty() {
            return Ok(());
        }
        let index = self.writes.commits.read();
        let mut seen = rustc_hash::FxHashSet::default();
        for (_, hash) in commits {
            let in_batch = !seen.insert(*hash);
            if in_batch || index.contains(hash) {
                return Err(Error::DuplicateCommit {
                    hash: hash.to_hex(),
                    in_batch,
                });
            }
        }
        Ok(())
    }

    /// Waits until the WAL is durable up to `lsn`, syncing it (for everyone) if no other
    /// writer is.
    fn sync_to(&self, lsn: u64, max_delay: Duration) -> Result<()> {
        let mut st = self.writes.sync.lock();
        loop {
            if st.durable_lsn >= lsn {
                return Ok(());
            }
            if self.is_poisoned() {
                return Err(self.poisoned_error());
            }
            if st.syncing {
                self.writes.synced.wait(&mut st);
                continue;
            }
            st.syncing = true;
            drop(st);
            if !max_delay.is_zero() {
                // Let writers that are already encoding join this fsync.
                let deadline = Instant::now() + max_delay;
                while self.writes.appending.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_micros(20));
                }
            }
            let (file, target_lsn, target_seq) = {
                let w = self.writes.writer.lock();
                (w.wal.handle(), w.lsn, w.next_seq - 1)
            };
            let result = file.sync_data();
            st = self.writes.sync.lock();
            st.syncing = false;
            match result {
                Ok(()) => {
                    st.durable_lsn = st.durable_lsn.max(target_lsn);
                    self.writes.visible_seq.fetch_max(target_seq, Ordering::SeqCst);
                    self.writes.synced.notify_all();
                }
                Err(e) => {
                    self.poison(&e);
                    self.writes.synced.notify_all();
                    return Err(e);
                }
            }
        }
    }

    /// Records that the WAL is durable up to `lsn` (after a rotation synced it).
    fn mark_durable(&self, lsn: u64, seq: u64) {
        let mut st = self.writes.sync.lock();
        st.durable_lsn = st.durable_lsn.max(lsn);
        self.writes.visible_seq.fetch_max(seq, Ordering::SeqCst);
        self.writes.synced.notify_all();
    }

    /// Tells subscribers that retention refused a write (at most once a minute).
    fn announce_refusal(&self, error: &Error) {
        let Error::Refused { reason } = error else { return };
        if !self.events.has_subscribers() {
            return;
        }
        {
            let mut alarms = self.background.alarms.lock();
            if alarms.last_refusal.is_some_and(|t| t.elapsed() < REFUSAL_WARNING_EVERY) {
                return;
            }
            alarms.last_refusal = Some(Instant::now());
        }
        self.events
            .publish(&crate::events::Event::StorageWarning(crate::events::StorageAlarm {
                kind: "retention_refused".into(),
                message: reason.clone(),
                free_bytes: None,
                threshold_bytes: None,
            }));
    }

    /// Tells subscribers when free disk space falls below the threshold (once per fall).
    fn check_disk_for_subscribers(&self) {
        if !self.events.has_subscribers() {
            return;
        }
        {
            let mut alarms = self.background.alarms.lock();
            if alarms.last_disk_check.is_some_and(|t| t.elapsed() < DISK_CHECK_EVERY) {
                return;
            }
            alarms.last_disk_check = Some(Instant::now());
        }
        let Ok(free) = crate::io::available_bytes(&self.dir) else { return };
        let warning = stats::low_disk(free, self.options.low_disk_bytes);
        let newly_low = {
            let mut alarms = self.background.alarms.lock();
            let was_low = std::mem::replace(&mut alarms.low_disk, warning.is_some());
            !was_low
        };
        if let Some(w) = warning
            && newly_low
        {
            self.events
                .publish(&crate::events::Event::StorageWarning(crate::events::StorageAlarm {
                    kind: w.kind.into(),
                    message: w.message,
                    free_bytes: Some(w.free_bytes),
                    threshold_bytes: Some(w.threshold_bytes),
                }));
        }
    }

    fn wake_flusher(&self) {
        self.background.flusher.lock().wake = true;
        self.background.flusher_wake.notify_all();
    }

    fn head_needs_flush(&self) -> bool {
        let w = self.writes.writer.lock();
        let bytes = w.head.bytes();
        bytes >= self.options.memory().head_flush_bytes || w.head_started.is_some_and(|t| t.elapsed() >= self.options.head_max_age)
    }

    fn flusher_loop(self: Arc<Self>) {
        loop {
            {
                let mut st = self.background.flusher.lock();
                if !st.stop && !st.wake {
                    self.background.flusher_wake.wait_for(&mut st, Duration::from_secs(1));
                }
                if st.stop {
                    return;
                }
                st.wake = false;
            }
            self.check_disk_for_subscribers();
            if self.is_poisoned() {
                continue;
            }
            if self.head_needs_flush()
                && let Err(e) = self.flush()
            {
                self.background.flusher.lock().last_error = Some(e.to_string());
            }
        }
    }
}

impl Writer {
    fn intern(&mut self, name: &str) -> Arc<str> {
        if let Some(n) = self.field_names.get(name) {
            return n.clone();
        }
        let n: Arc<str> = Arc::from(name);
        self.field_names.insert(name.to_owned(), n.clone());
        n
    }
}
