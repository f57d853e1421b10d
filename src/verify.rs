//! `verify`: check every checksum and cross-reference of a closed store, and optionally
//! repair what can be repaired by dropping the damaged part.
//!
//! Checked: the manifest; the catalog (every record, ids dense, keys unique, at least as
//! many series as the manifest requires); every segment (size and checksum against the
//! manifest, header, footer, index, every block decoded and compared with its statistics,
//! series ids known to the catalog with the same kind); the WAL from the checkpoint (every
//! record's checksum and contents, sequence numbers increasing, series definitions
//! consistent with the catalog); the full-text index of each month (tantivy checksums,
//! every indexed record id stored in that month's segments with the same time and series,
//! no record indexed twice, every text record the index claims to cover indexed).
//!
//! `repair` truncates the WAL at the first damaged record (later records are lost; the
//! report says how many bytes), and moves damaged segments to `<dir>/quarantine/`, removing
//! them from the manifest. A damaged or inconsistent text index is deleted (opening the
//! store rebuilds it from the segments). A damaged manifest or catalog is reported but
//! not repaired.

use crate::catalog::CatalogFile;
use crate::error::{Error, Result};
use crate::files::FileKind;
use crate::index::TagIndex;
use crate::io::{self, DirLock};
use crate::manifest::{self, Manifest};
use crate::segment::SegmentReader;
use crate::time::Month;
use crate::wal;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// A damaged file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// Byte offset of the damage.
    pub offset: u64,
    /// What is wrong.
    pub what: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Damage found (before repair).
    pub problems: Vec<Problem>,
    /// Harmless findings, such as a torn WAL tail that opening the store cuts off.
    pub notes: Vec<String>,
    /// What `repair` did.
    pub repairs: Vec<String>,
    /// Segment files checked.
    pub segments: u64,
    /// Rows in checked segments.
    pub rows: u64,
    /// Field values in checked segments.
    pub points: u64,
    /// Summary segment files checked (their rows are not counted in `rows`).
    pub summary_segments: u64,
    /// WAL records checked.
    pub wal_records: u64,
    /// Series in the catalog.
    pub series: u64,
    /// Commit rows checked against the unique commit index (by
    /// [`crate::history::verify_store`]; 0 from [`verify`] alone).
    pub commits: u64,
    /// File rows of commits checked.
    pub commit_files: u64,
    /// Objects (large diffs) present and checked against their keys.
    pub objects: u64,
    /// Their bytes.
    pub object_bytes: u64,
    /// Objects no stored commit names (harmless; `repair` removes them).
    pub orphan_objects: u64,
}

impl VerifyReport {
    /// True when no damage was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

fn problem(e: &Error, fallback: &Path) -> Problem {
    match e {
        Error::Corruption { file, offset, kind } => Problem {
            file: file.clone(),
            offset: *offset,
            what: kind.to_string(),
        },
        Error::UnsupportedVersion { file, .. } => Problem {
            file: file.clone(),
            offset: 0,
            what: e.to_string(),
        },
        other => Problem {
            file: fallback.to_path_buf(),
            offset: 0,
            what: other.to_string(),
        },
    }
}

/// Verifies the store in `dir` (which must not be open elsewhere); with `repair`, drops
/// damaged WAL tails and segments so the store opens again.
///
/// I/O failures and a missing or locked store are errors; damage is reported in the
/// returned [`VerifyReport`].
pub fn verify(dir: &Path, repair: bool) -> Result<VerifyReport> {
    // An offline check and repair: it works through the operating system directly.
    let fs = io::Fs::default();
    if !Manifest::path(dir).is_file() {
        return Err(Error::NotFound { path: dir.to_path_buf() });
    }
    let _lock = DirLock::acquire(dir)?;
    let mut report = VerifyReport::default();
    let manifest = match Manifest::load(dir) {
        Ok(Some(m)) => m,
        Ok(None) => return Err(Error::NotFound { path: dir.to_path_buf() }),
        Err(e) => {
            report.problems.push(problem(&e, &Manifest::path(dir)));
            report
                .notes
                .push("the manifest is damaged; segments cannot be checked and repair cannot rebuild it".into());
            return Ok(report);
        }
    };
    let catalog_path = FileKind::Catalog.path(dir);
    let catalog = if catalog_path.is_file() {
        match CatalogFile::load(&fs, dir, repair) {
            Ok(loaded) => {
                if loaded.torn_bytes > 0 {
                    let verb = if repair {
                        "removed"
                    } else {
                        "found (opening the store removes them)"
                    };
                    report
                        .notes
                        .push(format!("{} bytes of an interrupted catalog append {verb}", loaded.torn_bytes));
                }
                if loaded.catalog.len() < manifest.catalog_series as usize {
                    report.problems.push(Problem {
                        file: catalog_path.clone(),
                        offset: 0,
                        what: format!(
                            "holds {} series, the manifest requires {}",
                            loaded.catalog.len(),
                            manifest.catalog_series
                        ),
                    });
                }
                Some(loaded.catalog)
            }
            Err(e) => {
                report.problems.push(problem(&e, &catalog_path));
                None
            }
        }
    } else if manifest.catalog_series > 0 {
        report.problems.push(Problem {
            file: catalog_path.clone(),
            offset: 0,
            what: "missing".into(),
        });
        None
    } else {
        None
    };
    report.series = catalog.as_ref().map_or(0, |c| c.len() as u64);

    // The tag index is derived from the catalog: the part the file covers must agree with a
    // rebuild. A damaged or disagreeing file is dropped by repair and rebuilt on open.
    let tags_path = FileKind::Tags.path(dir);
    if let (Some(catalog), Some(bytes)) = (&catalog, io::read_file_if_exists(&tags_path)?) {
        let agrees = match TagIndex::decode(&tags_path, &bytes) {
            Some((stored, covered)) if covered <= catalog.len() as u64 => {
                let mut rebuilt = TagIndex::default();
                for (id, key) in catalog.keys().iter().enumerate().take(covered as usize) {
                    rebuilt.insert(id as u32, key);
                }
                stored.same_as(&rebuilt)
            }
            _ => false,
        };
        if !agrees {
            report.problems.push(Problem {
                file: tags_path.clone(),
                offset: 0,
                what: "the tag index does not match the catalog".into(),
            });
            if repair {
                fs.remove_file(&tags_path)?;
                report
                    .repairs
                    .push(format!("removed {} (rebuilt from the catalog on open)", tags_path.display()));
            }
        }
    }

    let data_dir = FileKind::Segment.path(dir);
    let mut damaged_segments = Vec::new();
    for meta in &manifest.segments {
        let path = meta.path(&data_dir);
        let checked = SegmentReader::open(&path, meta).and_then(|segment| {
            let (rows, points) = segment.verify()?;
            if let Some(catalog) = &catalog {
                for id in segment.series_ids() {
                    let known = catalog.get(id).map(|k| k.kind());
                    let entry = segment.series(id)?;
                    if known.is_none() || entry.as_ref().map(|e| e.kind) != known {
                        return Err(Error::malformed(
                            &path,
                            0,
                            format!("series {id} is unknown to the catalog or has another kind there"),
                        ));
                    }
                }
            }
            Ok((rows, points))
        });
        match checked {
            Ok((rows, points)) => {
                report.segments += 1;
                report.rows += rows;
                report.points += points;
            }
            Err(e) => {
                report.problems.push(problem(&e, &path));
                damaged_segments.push(meta.clone());
            }
        }
    }
    for meta in &manifest.summaries {
        let path = meta.path(&data_dir);
        let checked = SegmentReader::open(&path, meta).and_then(|segment| {
            segment.verify()?;
            for id in segment.series_ids() {
                let entry = segment.series(id)?;
                let known = catalog.as_ref().is_none_or(|c| c.get(id).is_some());
                // Summary rows are one per bucket: stored as metric-like series.
                if !known || entry.as_ref().map(|e| e.kind) != Some(crate::model::SeriesKind::Metric) {
                    return Err(Error::malformed(
                        &path,
                        0,
                        format!("summary series {id} is unknown to the catalog or not stored as one row per bucket"),
                    ));
                }
            }
            Ok(())
        });
        match checked {
            Ok(()) => report.summary_segments += 1,
            Err(e) => {
                report.problems.push(problem(&e, &path));
                damaged_segments.push(meta.clone());
            }
        }
    }
    let mut tiers = vec![(data_dir.clone(), crate::manifest::Resolution::Detail)];
    for tier in crate::manifest::Resolution::SUMMARIES {
        tiers.push((manifest::tier_dir(&data_dir, tier), tier));
    }
    let month_dirs = tiers.iter().map(|(d, t)| Ok((io::list_dir(d)?, *t))).collect::<Result<Vec<_>>>()?;
    for (month_dir, tier) in month_dirs
        .into_iter()
        .flat_map(|(dirs, t)| dirs.into_iter().map(move |d| (d, t)))
        .filter(|(e, _)| e.is_dir)
    {
        let Some(month) = Month::parse(&month_dir.name) else { continue };
        for file in io::list_dir(&month_dir.path)? {
            let listed = manifest::parse_segment_name(&file.name).is_some_and(|g| {
                manifest
                    .segments
                    .iter()
                    .chain(&manifest.summaries)
                    .any(|s| s.tier == tier && s.month == month && s.generation == g)
            });
            if !listed && (file.name.ends_with(".seg") || file.name.ends_with(".tmp")) {
                report.notes.push(format!(
                    "{} is not in the manifest (left by an interrupted flush; opening the store removes it)",
                    file.path.display()
                ));
            }
        }
    }

    if let Some(catalog) = &catalog {
        check_text_indexes(&fs, &data_dir, &manifest, catalog, &damaged_segments, repair, &mut report)?;
    }

    let wal_dir = FileKind::Wal.path(dir);
    let check_wal = |repair: bool, report: &mut VerifyReport| -> Result<()> {
        let mut catalog = catalog.clone();
        let mut last_seq = manifest.last_seq;
        let mut records = 0u64;
        let replayed = wal::replay(&fs, &wal_dir, manifest.wal_checkpoint, repair, |batch, end| {
            let file = wal::file_path(&wal_dir, end.file_no);
            if batch.first_seq <= last_seq {
                return Err(Error::malformed(&file, end.offset, "sequence numbers go backwards"));
            }
            last_seq = batch.first_seq + batch.rows.len() as u64 - 1;
            if let Some(catalog) = catalog.as_mut() {
                for (id, key) in batch.new_series {
                    catalog
                        .insert_with_id(id, key)
                        .map_err(|why| Error::malformed(&file, end.offset, why))?;
                }
                if batch.series_ids.iter().any(|&id| catalog.get(id).is_none()) {
                    return Err(Error::malformed(&file, end.offset, "record refers to an unknown series"));
                }
            }
            records += 1;
            Ok(())
        })?;
        report.wal_records = records;
        if let Some(torn) = replayed.torn_tail {
            let verb = if repair {
                "removed"
            } else {
                "found (opening the store removes it)"
            };
            report.notes.push(format!(
                "incomplete last WAL record {verb}: {} bytes at offset {} of {}",
                torn.dropped_bytes,
                torn.offset,
                torn.file.display()
            ));
        }
        Ok(())
    };
    let mut wal_damage = None;
    if let Err(e) = check_wal(repair, &mut report) {
        match &e {
            Error::Corruption { file, offset, .. } => wal_damage = Some((file.clone(), *offset)),
            _ => return Err(e),
        }
        report.problems.push(problem(&e, &wal_dir));
    }

    if repair {
        if !damaged_segments.is_empty() {
            let quarantine = dir.join(crate::files::QUARANTINE_DIR);
            fs.create_dir_durable(&quarantine)?;
            let mut fixed = manifest.clone();
            for meta in &damaged_segments {
                let from = meta.path(&data_dir);
                if from.is_file() {
                    let to = match meta.tier {
                        crate::manifest::Resolution::Detail => quarantine.join(format!("{}-{:020}.seg", meta.month, meta.generation)),
                        tier => quarantine.join(format!("{tier}-{}-{:020}.seg", meta.month, meta.generation)),
                    };
                    fs.rename_durable(&from, &to)?;
                    report
                        .repairs
                        .push(format!("moved {} to {} ({} rows lost)", from.display(), to.display(), meta.rows));
                } else {
                    report.repairs.push(format!(
                        "dropped missing segment {} from the manifest ({} rows lost)",
                        from.display(),
                        meta.rows
                    ));
                }
                let same = |s: &manifest::SegmentMeta| s.tier == meta.tier && s.month == meta.month && s.generation == meta.generation;
                fixed.segments.retain(|s| !same(s));
                fixed.summaries.retain(|s| !same(s));
            }
            fixed.store(&fs, dir)?;
        }
        if let Some((file, offset)) = wal_damage {
            let file_no = wal::list_files(&wal_dir)?
                .into_iter()
                .find(|(_, p, _)| *p == file)
                .map(|(n, _, _)| n);
            match file_no {
                Some(file_no) => {
                    let len = io::file_len(&file)?;
                    fs.truncate(&file, offset.max(wal::FILE_HEADER_LEN))?;
                    let mut dropped = len.saturating_sub(offset);
                    for (no, path, len) in wal::list_files(&wal_dir)? {
                        if no > file_no {
                            fs.remove_file(&path)?;
                            dropped += len;
                        }
                    }
                    report.repairs.push(format!(
                        "truncated the WAL at offset {offset} of {}: {dropped} bytes of records after the damage are lost",
                        file.display()
                    ));
                    let mut recheck = VerifyReport::default();
                    if let Err(e) = check_wal(true, &mut recheck) {
                        report.problems.push(problem(&e, &wal_dir));
                        report.notes.push("the WAL is still damaged after truncation".into());
                    }
                }
                None => {
                    // The file holding the checkpoint (or one in the sequence) is missing:
                    // start the log afresh there; records in later files cannot be replayed
                    // without it.
                    let missing_no = file
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.strip_suffix(".wal"))
                        .and_then(|n| n.parse::<u64>().ok());
                    if let Some(missing_no) = missing_no {
                        let mut dropped = 0;
                        for (no, path, len) in wal::list_files(&wal_dir)? {
                            if no > missing_no {
                                fs.remove_file(&path)?;
                                dropped += len;
                            }
                        }
                        wal::WalWriter::create(&fs, &wal_dir, missing_no)?;
                        report.repairs.push(format!(
                            "recreated missing WAL file {}; {dropped} bytes of later WAL files dropped",
                            file.display()
                        ));
                    } else {
                        report.notes.push(format!("cannot repair {}: it is not a WAL file", file.display()));
                    }
                }
            }
        }
    }
    Ok(report)
}

/// Cross-checks each month's full-text index against that month's segments.
fn check_text_indexes(
    fs: &io::Fs,
    data_dir: &Path,
    manifest: &Manifest,
    catalog: &crate::catalog::Catalog,
    damaged_segments: &[manifest::SegmentMeta],
    repair: bool,
    report: &mut VerifyReport,
) -> Result<()> {
    use crate::text::MonthIndex;
    use crate::text::index::ReadOnly;
    let texts = crate::text::text_series(catalog);
    let mut months: Vec<Month> = manifest.segments.iter().map(|s| s.month).collect();
    months.dedup();
    for month in months {
        let month_dir = data_dir.join(month.to_string());
        let index_dir = month_dir.join(crate::text::index::DIR_NAME);
        let drop_index = |report: &mut VerifyReport| -> Result<()> {
            if repair && index_dir.is_dir() {
                fs.remove_dir_all(&index_dir)?;
                report.repairs.push(format!(
                    "removed the text index {} (rebuilt from the segments on open)",
                    index_dir.display()
                ));
            }
            Ok(())
        };
        if damaged_segments.iter().any(|d| d.month == month) {
            report.notes.push(format!(
                "the text index of {month} was not cross-checked: a segment of the month is damaged"
            ));
            drop_index(report)?;
            continue;
        }
        // Every text record of the month's segments: record id -> (timestamp, series).
        let mut stored: rustc_hash::FxHashMap<u64, (i64, u32)> = rustc_hash::FxHashMap::default();
        for meta in manifest.segments.iter().filter(|s| s.month == month) {
            let segment = SegmentReader::open(&meta.path(data_dir), meta)?;
            for series in segment.series_set() & &texts {
                let Some(entry) = segment.series(series)? else { continue };
                let fields = crate::text::text_field_ids(&segment, entry.kind);
                if fields.is_empty() {
                    continue;
                }
                for block in &entry.blocks {
                    let chunk = segment.read_block(series, block, Some(&fields))?;
                    for (row, _) in crate::text::chunk_texts(entry.kind, &chunk) {
                        stored.insert(chunk.record_ids[row], (chunk.timestamps[row], series));
                    }
                }
            }
        }
        let index = match MonthIndex::open_read_only(&month_dir) {
            Ok(ReadOnly::Open(index)) => index,
            Ok(ReadOnly::OtherFormat(format)) => {
                report.notes.push(format!(
                    "{} is a format {format} text index; opening the store rebuilds it as format {}",
                    index_dir.display(),
                    crate::text::index::FORMAT_VERSION
                ));
                continue;
            }
            Ok(ReadOnly::Absent) => {
                if !stored.is_empty() {
                    report.notes.push(format!(
                        "{} has no text index for its {} text records (opening the store builds it)",
                        month_dir.display(),
                        stored.len()
                    ));
                }
                continue;
            }
            Err(e) => {
                report.problems.push(problem(&e, &index_dir));
                drop_index(report)?;
                continue;
            }
        };
        let mut problems = Vec::new();
        for file in index.damaged_files()? {
            problems.push(Problem {
                file,
                offset: 0,
                what: "checksum mismatch in the text index".into(),
            });
        }
        if problems.is_empty() {
            let covered = index.covered();
            let mut seen = rustc_hash::FxHashSet::default();
            let mut wrong = Vec::new();
            for (rid, ts, series) in index.view().all_documents()? {
                if !seen.insert(rid) {
                    wrong.push(format!("record {rid} is indexed twice"));
                } else if rid > covered {
                    wrong.push(format!("record {rid} is indexed beyond the committed coverage {covered}"));
                } else if stored.get(&rid) != Some(&(ts, series)) {
                    wrong.push(format!("indexed record {rid} (series {series}, time {ts}) is not in the segments"));
                }
            }
            let missing = stored.keys().filter(|&&rid| rid <= covered && !seen.contains(&rid)).count();
            if missing > 0 {
                wrong.push(format!("{missing} stored text records up to {covered} are not indexed"));
            }
            let behind = stored.keys().filter(|&&rid| rid > covered).count();
            if behind > 0 {
                report.notes.push(format!(
                    "the text index of {month} is {behind} records behind its segments (opening the store indexes them)"
                ));
            }
            let shown = wrong.len().min(5);
            for what in wrong.iter().take(shown) {
                problems.push(Problem {
                    file: index_dir.clone(),
                    offset: 0,
                    what: what.clone(),
                });
            }
            if wrong.len() > shown {
                problems.push(Problem {
                    file: index_dir.clone(),
                    offset: 0,
                    what: format!("and {} more inconsistencies", wrong.len() - shown),
                });
            }
        }
        drop(index);
        if !problems.is_empty() {
            report.problems.extend(problems);
            drop_index(report)?;
        }
    }
    Ok(())
}
