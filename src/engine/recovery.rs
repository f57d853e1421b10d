//! Opening a store: initialise a new one, or load manifest, catalog and segments, remove
//! what an interrupted flush left behind, and replay the WAL.

use super::{Background, FlushState, FlusherState, Inner, Published, SyncState, Writer, Writes};
use crate::cache::BlockCache;
use crate::catalog::{Catalog, CatalogFile, LoadedCatalog};
use crate::chunk::ColumnValues;
use crate::commit_index::{CommitIndex, CommitLocation};
use crate::error::{CorruptionKind, Error, Result};
use crate::files::FileKind;
use crate::head::{ApplyBatch, Head};
use crate::io::{self, DirLock, Fs};
use crate::manifest::{self, Manifest};
use crate::model::{CommitHash, SeriesId, SeriesKind, ValueType};
use crate::options::Options;
use crate::read::HeadRef;
use crate::read::ReadState;
use crate::segment::SegmentReader;
use crate::text::{TextStore, WriterOptions};
use crate::time::Month;
use crate::wal::{self, TornTail, WalWriter};
use parking_lot::{Condvar, Mutex, RwLock};
use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};
use std::time::{Duration, Instant};

/// What opening the store found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// WAL records replayed into the head.
    pub wal_records: u64,
    /// Rows those records held.
    pub wal_rows: u64,
    /// An incomplete last WAL record that was cut off (it was never acknowledged).
    pub torn_tail: Option<TornTail>,
    /// Bytes cut off the end of the catalog file (series the WAL re-creates).
    pub catalog_torn_bytes: u64,
    /// True when the tag index file was missing, stale or damaged and (part of) the index
    /// was rebuilt from the catalog.
    pub tag_index_rebuilt: bool,
    /// Files an interrupted flush left behind, removed.
    pub removed_files: Vec<PathBuf>,
    /// Records added to the full-text index because it was behind the segments (a crash
    /// between a flush's manifest and its index commit) or missing.
    pub text_rows_indexed: u64,
    /// Months whose full-text index was missing or unreadable and was rebuilt.
    pub text_months_rebuilt: Vec<Month>,
    /// True when the commit index file was missing or damaged while the store holds
    /// commits, and was rebuilt from the commit rows.
    pub commit_index_rebuilt: bool,
    /// Time spent opening.
    pub duration: Duration,
    /// True when the store was created by this open.
    pub created: bool,
}

pub(super) fn open(dir: &Path, options: Options) -> Result<Inner> {
    let started = Instant::now();
    let fs = Fs::new(options.file_system.clone());
    if !dir.is_dir() {
        if !options.create_if_missing {
            return Err(Error::NotFound { path: dir.to_path_buf() });
        }
        fs.create_dir_durable(dir)?;
    }
    let lock = DirLock::acquire(dir)?;
    let data_dir = FileKind::Segment.path(dir);
    let wal_dir = FileKind::Wal.path(dir);
    let mut report = RecoveryReport::default();
    let manifest = match Manifest::load(dir)? {
        Some(m) => m,
        None => {
            if !options.create_if_missing {
                return Err(Error::NotFound { path: dir.to_path_buf() });
            }
            report.created = true;
            initialize(&fs, dir, &data_dir, &wal_dir)?
        }
    };
    fs.create_dir_durable(&data_dir)?;
    fs.create_dir_durable(&wal_dir)?;

    let LoadedCatalog {
        mut catalog,
        file: catalog_file,
        torn_bytes,
        tags_covered,
    } = CatalogFile::open(&fs, dir)?;
    report.catalog_torn_bytes = torn_bytes;
    report.tag_index_rebuilt = tags_covered < catalog.len() as u64;
    if catalog.len() < manifest.catalog_series as usize {
        return Err(Error::malformed(
            catalog_file.path(),
            0,
            format!(
                "holds {} series but the manifest requires {}",
                catalog.len(),
                manifest.catalog_series
            ),
        ));
    }

    report.removed_files = remove_unlisted_segments(&fs, &data_dir, &manifest)?;
    let cache = Arc::new(BlockCache::new(options.memory().block_cache_bytes));
    let mut segments = Vec::with_capacity(manifest.segments.len());
    for meta in &manifest.segments {
        let path = meta.path(&data_dir);
        if !path.is_file() {
            return Err(Error::malformed(&path, 0, "segment listed in the manifest is missing"));
        }
        segments.push(Arc::new(SegmentReader::open(&path, meta)?.with_cache(cache.clone())));
    }
    let mut summaries = Vec::with_capacity(manifest.summaries.len());
    for meta in &manifest.summaries {
        let path = meta.path(&data_dir);
        if !path.is_file() {
            return Err(Error::malformed(&path, 0, "summary segment listed in the manifest is missing"));
        }
        summaries.push(Arc::new(SegmentReader::open(&path, meta)?.with_cache(cache.clone())));
    }
    let horizons = Arc::new(crate::retention::Horizons {
        by_rule: manifest.horizons.clone(),
    });
    let horizons_for_writes = horizons.clone();

    let texts = crate::text::text_series(&catalog);
    let mut months: Vec<Month> = manifest.segments.iter().map(|s| s.month).collect();
    months.dedup();
    report.removed_files.extend(TextStore::remove_orphans(&fs, &data_dir, &months)?);
    let mut text = TextStore::new(
        &fs,
        &data_dir,
        WriterOptions {
            threads: options.flush_threads,
            memory_bytes: options.memory().text_index_bytes,
        },
    );
    for &month in &months {
        let caught_up = text.catch_up(month, &segments, &catalog, &texts, manifest.last_seq)?;
        report.text_rows_indexed += caught_up.rows;
        if caught_up.rebuilt {
            report.text_months_rebuilt.push(month);
        }
    }
    text.close_writers_except(&[])?;
    let text_view = Arc::new(text.view());

    let mut commits = load_commit_index(&fs, dir, &segments, &catalog, &mut report)?;
    let mut head = Head::new();
    let mut field_names: FxHashMap<String, Arc<str>> = FxHashMap::default();
    let mut last_seq = manifest.last_seq;
    let replay = wal::replay(&fs, &wal_dir, manifest.wal_checkpoint, true, |batch, end| {
        let file = wal::file_path(&wal_dir, end.file_no);
        if batch.first_seq <= last_seq {
            return Err(Error::malformed(&file, end.offset, "sequence numbers go backwards"));
        }
        for (id, key) in batch.new_series {
            catalog
                .insert_with_id(id, key)
                .map_err(|why| Error::malformed(&file, end.offset, why))?;
        }
        let series: Vec<(SeriesId, SeriesKind)> = batch
            .series_ids
            .iter()
            .map(|&id| catalog.get(id).map(|k| (id, k.kind())))
            .collect::<Option<_>>()
            .ok_or_else(|| Error::malformed(&file, end.offset, "record refers to an unknown series"))?;
        let names: Vec<Arc<str>> = batch
            .field_names
            .iter()
            .map(|n| field_names.entry(n.clone()).or_insert_with(|| Arc::from(n.as_str())).clone())
            .collect();
        let commit_rows = crate::model::commit::commit_rows(
            batch.series_ids.len(),
            |i| catalog.get(batch.series_ids[i]).is_some_and(|k| k.holds_commits()),
            &batch.field_names,
            &batch.rows,
            &batch.values,
        )
        .map_err(|e| Error::malformed(&file, end.offset, e.to_string()))?;
        commits.insert_rows(commit_rows, &batch.rows, batch.first_seq, |s| batch.series_ids[s as usize]);
        head.apply(&ApplyBatch {
            first_seq: batch.first_seq,
            series: &series,
            field_names: &names,
            rows: &batch.rows,
            values: &batch.values,
        });
        last_seq = batch.first_seq + batch.rows.len() as u64 - 1;
        report.wal_rows += batch.rows.len() as u64;
        Ok(())
    })?;
    make_durable(&fs, dir, &manifest)?;
    report.wal_records = replay.records;
    report.torn_tail = replay.torn_tail;
    let wal = match replay.append_at {
        Some(end) => WalWriter::reopen(&fs, &wal_dir, end)?,
        None => WalWriter::create(&fs, &wal_dir, replay.next_file_no)?,
    };

    let head_started = (!head.is_empty()).then(Instant::now);
    let head = HeadRef::new(head);
    report.duration = started.elapsed();
    let objects = crate::objects::Objects::open(&options.objects, fs.clone(), dir)?;
    Ok(Inner {
        objects,
        fs,
        dir: dir.to_path_buf(),
        data_dir,
        wal_dir,
        options,
        _lock: lock,
        recovery: report,
        cache,
        poison: Mutex::new(None),
        poisoned: AtomicBool::new(false),
        closed: AtomicBool::new(false),
        writes: Writes {
            writer: Mutex::new(Writer {
                wal,
                lsn: 0,
                next_seq: last_seq + 1,
                head: head.clone(),
                head_started,
                field_names,
            }),
            catalog: RwLock::new(catalog),
            sync: Mutex::new(SyncState::default()),
            synced: Condvar::new(),
            appending: AtomicUsize::new(0),
            visible_seq: AtomicU64::new(last_seq),
            horizons: RwLock::new(horizons_for_writes),
            commits: RwLock::new(commits),
        },
        published: Published {
            state: RwLock::new(Arc::new(ReadState {
                segments,
                heads: vec![head],
                text: text_view,
                summaries,
                horizons,
            })),
            flush: Mutex::new(FlushState {
                manifest,
                catalog_file,
                tags_persisted: tags_covered,
                text,
            }),
            retired: Mutex::new(Vec::new()),
        },
        background: Background {
            flusher: Mutex::new(FlusherState::default()),
            flusher_wake: Condvar::new(),
            lifecycle: Mutex::new(()),
            compactor: Mutex::new(Default::default()),
            compactor_wake: Condvar::new(),
            summary_run: Mutex::new(None),
            alarms: Mutex::new(Default::default()),
        },
        events: Default::default(),
    })
}

/// Loads the commit index, or rebuilds it from the segments' commit rows when its file is
/// damaged, or missing while the catalog has commit series, and writes the rebuilt file so
/// the next open need not rebuild again. WAL replay adds the rest.
fn load_commit_index(
    fs: &Fs,
    dir: &Path,
    segments: &[Arc<SegmentReader>],
    catalog: &Catalog,
    report: &mut RecoveryReport,
) -> Result<CommitIndex> {
    let has_commits = catalog.keys().iter().any(|k| k.holds_commits());
    match CommitIndex::load(dir) {
        Ok(index) if !has_commits || FileKind::Commits.path(dir).is_file() => return Ok(index),
        Ok(_) | Err(Error::Corruption { .. } | Error::UnsupportedVersion { .. }) => {}
        Err(e) => return Err(e),
    }
    report.commit_index_rebuilt = true;
    let index = rebuild_commit_index(segments, catalog)?;
    fs.write_file_atomic(&FileKind::Commits.path(dir), &index.encode(u64::MAX))?;
    Ok(index)
}

/// The commit index of the commit rows in `segments`.
pub(crate) fn rebuild_commit_index(segments: &[Arc<SegmentReader>], catalog: &Catalog) -> Result<CommitIndex> {
    let mut index = CommitIndex::default();
    for segment in segments {
        let Some(field) = segment
            .fields()
            .iter()
            .position(|(name, t)| &**name == "commit_hash" && *t == ValueType::Str)
        else {
            continue;
        };
        let fields = [field as u32];
        for series in segment.series_ids() {
            if !catalog.get(series).is_some_and(|k| k.holds_commits()) {
                continue;
            }
            let Some(entry) = segment.series(series)? else { continue };
            for block in &entry.blocks {
                let chunk = segment.read_block(series, block, Some(&fields))?;
                let Some(column) = chunk.columns.iter().find(|c| &*c.name == "commit_hash") else {
                    continue;
                };
                let ColumnValues::Str(values) = &column.values else { continue };
                for (row, text) in values.iter().enumerate() {
                    if !column.is_valid(row) {
                        continue;
                    }
                    let hash = CommitHash::parse(text).map_err(|why| Error::malformed(segment.path(), block.offset, why))?;
                    index.insert(
                        hash,
                        CommitLocation {
                            timestamp: chunk.timestamps[row],
                            record_id: chunk.record_ids[row],
                            series,
                        },
                    );
                }
            }
        }
    }
    index.mark_flushed(u64::MAX);
    Ok(index)
}

/// Fsyncs everything the open read, before any of it becomes visible. A change whose fsync
/// failed (in a process that then stopped) may still sit in the page cache: this open sees
/// it, so it must not vanish in a later power cut. That covers the manifest, the catalog and
/// the replayed WAL files, and the directories whose entries name them and the segments.
fn make_durable(fs: &Fs, dir: &Path, manifest: &Manifest) -> Result<()> {
    let wal_dir = FileKind::Wal.path(dir);
    for (file_no, path, _) in wal::list_files(&wal_dir)? {
        if file_no >= manifest.wal_checkpoint.file_no {
            fs.open_append(&path)?.sync_data()?;
        }
    }
    for kind in [FileKind::Manifest, FileKind::Catalog] {
        fs.open_append(&kind.path(dir))?.sync_all()?;
    }
    let data_dir = FileKind::Segment.path(dir);
    let mut dirs: Vec<PathBuf> = vec![dir.to_path_buf(), wal_dir, data_dir.clone()];
    for meta in manifest.segments.iter().chain(&manifest.summaries) {
        if let Some(month_dir) = meta.path(&data_dir).parent() {
            dirs.push(month_dir.to_path_buf());
        }
    }
    dirs.sort();
    dirs.dedup();
    for d in dirs {
        fs.sync_dir(&d)?;
    }
    Ok(())
}

/// Creates an empty store: WAL file 1, then the manifest that makes the store exist.
///
/// Refuses when segment files or WAL records are present without a manifest: that is a
/// damaged store, not a new one.
fn initialize(fs: &Fs, dir: &Path, data_dir: &Path, wal_dir: &Path) -> Result<Manifest> {
    for month_dir in io::list_dir(data_dir)?.into_iter().filter(|e| e.is_dir) {
        if io::list_dir(&month_dir.path)?
            .iter()
            .any(|f| manifest::parse_segment_name(&f.name).is_some())
        {
            return Err(Error::corruption(
                &Manifest::path(dir),
                0,
                CorruptionKind::Malformed("MANIFEST is missing but data/ holds segments".into()),
            ));
        }
    }
    for (_, path, len) in wal::list_files(wal_dir)? {
        if len > wal::FILE_HEADER_LEN {
            return Err(Error::corruption(
                &Manifest::path(dir),
                0,
                CorruptionKind::Malformed("MANIFEST is missing but the WAL holds records".into()),
            ));
        }
        // An empty WAL file from an interrupted initialisation.
        fs.remove_file(&path)?;
    }
    fs.create_dir_durable(data_dir)?;
    fs.create_dir_durable(wal_dir)?;
    let manifest = Manifest::empty();
    WalWriter::create(fs, wal_dir, manifest.wal_checkpoint.file_no)?;
    manifest.store(fs, dir)?;
    Ok(manifest)
}

/// Removes temporary files and segments the manifest does not list (an interrupted flush,
/// compaction or summary run), and month directories left empty, in every tier.
fn remove_unlisted_segments(fs: &Fs, data_dir: &Path, manifest: &Manifest) -> Result<Vec<PathBuf>> {
    let mut removed = remove_unlisted_in_tier(fs, data_dir, &manifest.segments)?;
    for tier in crate::manifest::Resolution::SUMMARIES {
        let listed: Vec<_> = manifest.summaries.iter().filter(|s| s.tier == tier).cloned().collect();
        removed.extend(remove_unlisted_in_tier(fs, &manifest::tier_dir(data_dir, tier), &listed)?);
    }
    Ok(removed)
}

fn remove_unlisted_in_tier(fs: &Fs, tier_dir: &Path, listed: &[manifest::SegmentMeta]) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for month_dir in io::list_dir(tier_dir)?.into_iter().filter(|e| e.is_dir) {
        let Some(month) = Month::parse(&month_dir.name) else { continue };
        for file in io::list_dir(&month_dir.path)? {
            let listed = manifest::parse_segment_name(&file.name)
                .map(|generation| listed.iter().any(|s| s.month == month && s.generation == generation));
            let is_temporary = file.name.ends_with(".seg.tmp");
            if listed == Some(false) || is_temporary {
                fs.remove_file(&file.path)?;
                removed.push(file.path);
            }
        }
        fs.remove_empty_dir(&month_dir.path)?;
    }
    Ok(removed)
}
