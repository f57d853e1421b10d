//! The store's life over months and years: compaction (merging the small segments flushes
//! leave into few large ones). The policy is pure (`policy`), the merge works on segment
//! readers it is given (`merge`); the engine supplies both with its manifest and
//! publishes the result.

pub(crate) mod archive;
pub(crate) mod merge;
pub(crate) mod policy;

pub use crate::manifest::Resolution;
pub use crate::retention::{Retention, RetentionOptions};
/// The mergeable quantile sketch of summaries.
pub use crate::rollup::sketch;

use serde::Serialize;

/// One planned merge: the segments of a month that would become one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedCompaction {
    /// `detail`, or the summary tier (`hour`, `day`, `week`).
    pub tier: Resolution,
    /// `YYYY-MM`.
    pub month: String,
    /// Segment files merged.
    pub segments: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Their rows.
    pub rows: u64,
    /// Tier of the output (0 is a flush).
    pub level: u8,
    /// Why: `sealed` (the month is over: everything becomes one file) or `tiered` (enough
    /// small segments accumulated in a month still written).
    pub reason: &'static str,
}

/// What one merge did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompactedMonth {
    /// `detail`, or the summary tier (`hour`, `day`, `week`).
    pub tier: Resolution,
    /// `YYYY-MM`.
    pub month: String,
    /// Why it ran (see [`PlannedCompaction::reason`]).
    pub reason: &'static str,
    /// Segment files replaced.
    pub input_segments: usize,
    /// Their bytes.
    pub input_bytes: u64,
    /// Their rows (a metric timestamp written twice counts twice).
    pub input_rows: u64,
    /// Their field values.
    pub input_points: u64,
    /// Bytes of the segment that replaced them.
    pub output_bytes: u64,
    /// Its rows (duplicates resolved: the newest write of a metric timestamp).
    pub output_rows: u64,
    /// Its field values.
    pub output_points: u64,
    /// Wall time of the merge, its verification and publication.
    pub seconds: f64,
}

/// What [`crate::Engine::compact`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CompactionReport {
    /// Merges done, in order.
    pub merged: Vec<CompactedMonth>,
    /// Merges skipped and why (not enough free disk, the store closing).
    pub skipped: Vec<String>,
}

impl CompactedMonth {
    /// Input field values merged per second of wall time.
    pub fn points_per_second(&self) -> f64 {
        self.input_points as f64 / self.seconds.max(1e-9)
    }
}

impl CompactionReport {
    /// Segment files the merges replaced, over all months.
    pub fn input_segments(&self) -> usize {
        self.merged.iter().map(|m| m.input_segments).sum()
    }

    /// Bytes of the replaced segments.
    pub fn input_bytes(&self) -> u64 {
        self.merged.iter().map(|m| m.input_bytes).sum()
    }

    /// Bytes of the segments that replaced them.
    pub fn output_bytes(&self) -> u64 {
        self.merged.iter().map(|m| m.output_bytes).sum()
    }
}

/// What [`crate::Engine::optimize`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct OptimizeReport {
    /// The merges (every month with more than one segment becomes one file).
    pub compaction: CompactionReport,
    /// Months whose full-text index was merged into one segment.
    pub text_months_merged: usize,
    /// Files no manifest lists and no reader holds (left by a failed deletion), removed.
    pub orphans_removed: Vec<std::path::PathBuf>,
}

/// Progress of a running merge, reported after every window of series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionProgress {
    /// `YYYY-MM`.
    pub month: String,
    /// Series written so far.
    pub series_done: u64,
    /// Series in the month's inputs.
    pub series_total: u64,
    /// Input bytes consumed so far (by the block sizes of the series done).
    pub input_bytes_done: u64,
    /// Input bytes of the whole merge.
    pub input_bytes_total: u64,
}

/// What [`crate::Engine::archive`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchiveReport {
    /// The archive file written.
    pub path: std::path::PathBuf,
    /// `YYYY-MM` of the months it holds, now gone from the store.
    pub months: Vec<String>,
    /// Segment files packed.
    pub segments: usize,
    /// Rows in them.
    pub rows: u64,
    /// Field values in them.
    pub points: u64,
    /// Bytes of the segment files.
    pub segment_bytes: u64,
    /// Bytes of the archive file.
    pub archive_bytes: u64,
    /// Objects (large diffs of the months' commits) copied into the archive. They stay in
    /// the store's object directory until `annals verify --repair` removes those no
    /// stored commit names.
    pub objects: usize,
    /// Their bytes, before compression.
    pub object_bytes: u64,
    /// Objects the months' commits name that the store did not have (the archive lists
    /// them; `annals verify` reports them too).
    pub missing_objects: Vec<String>,
    /// Wall time, including reading the archive back.
    pub seconds: f64,
}

/// What [`crate::Engine::restore`] did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RestoreReport {
    /// The archive read.
    pub path: std::path::PathBuf,
    /// `YYYY-MM` of the months restored.
    pub months: Vec<String>,
    /// Segment files written back.
    pub segments: usize,
    /// Rows in them.
    pub rows: u64,
    /// Field values in them.
    pub points: u64,
    /// Log and alert records added to the full-text index (it is derived data, rebuilt from
    /// the restored segments).
    pub text_records_indexed: u64,
    /// Objects (large diffs) written back to the store's object directory (those it held
    /// already are kept).
    pub objects: usize,
    /// Objects the restored commits name that the archive did not hold, because the store
    /// that wrote it had lost them: their diffs cannot be read.
    pub missing_objects: Vec<String>,
    /// Wall time.
    pub seconds: f64,
}

/// One archive file, as [`crate::Engine::archives`] and `annals archive list` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArchiveInfo {
    /// The file.
    pub path: std::path::PathBuf,
    /// `YYYY-MM` of the months it holds.
    pub months: Vec<String>,
    /// Segment files in it.
    pub segments: usize,
    /// Rows.
    pub rows: u64,
    /// Field values.
    pub points: u64,
    /// Bytes of the segment files it restores.
    pub segment_bytes: u64,
    /// Bytes of the archive file.
    pub archive_bytes: u64,
    /// When it was written, RFC 3339.
    pub created: String,
    /// Series it holds.
    pub series: usize,
    /// Objects (large diffs of its commits) it holds.
    pub objects: usize,
}

/// An entry of [`crate::Engine::archives`]: an archive and what it holds, or a file in the
/// archive directory that cannot be read as one. As JSON, the [`ArchiveInfo`] itself, or
/// `{"path": …, "error": …}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ArchiveListing {
    /// A readable archive.
    Readable(ArchiveInfo),
    /// A damaged or foreign file.
    Unreadable {
        /// The file.
        path: std::path::PathBuf,
        /// Why it cannot be read.
        error: String,
    },
}

impl ArchiveListing {
    /// The file.
    pub fn path(&self) -> &std::path::Path {
        match self {
            ArchiveListing::Readable(info) => &info.path,
            ArchiveListing::Unreadable { path, .. } => path,
        }
    }

    /// What it holds, when it is readable.
    pub fn info(&self) -> Option<&ArchiveInfo> {
        match self {
            ArchiveListing::Readable(info) => Some(info),
            ArchiveListing::Unreadable { .. } => None,
        }
    }
}

/// Reads an archive's index (header, footer, index checksum and entry names are checked;
/// entry contents are checked by a restore).
pub fn archive_info(path: &std::path::Path) -> crate::Result<ArchiveInfo> {
    let index = archive::read_index(path)?;
    let archive_bytes = crate::io::file_len(path)?;
    Ok(ArchiveInfo {
        path: path.to_path_buf(),
        months: index.months.clone(),
        segments: index.entries.len(),
        rows: index.entries.iter().map(|e| e.rows).sum(),
        points: index.entries.iter().map(|e| e.points).sum(),
        segment_bytes: index.entries.iter().map(|e| e.raw_len).sum(),
        archive_bytes,
        created: crate::time::format_rfc3339(index.created_ns),
        series: index.series.len(),
        objects: index.objects.len(),
    })
}
