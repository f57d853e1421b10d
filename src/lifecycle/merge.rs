//! The merge itself: a month's input segments streamed series by series through the read
//! path (which resolves duplicates exactly as queries do) into one new segment.
//!
//! Memory is bounded by a window of series (about `WINDOW_INPUT_BYTES` of input blocks,
//! encoded in parallel) and, within a series, by two blocks of decoded rows plus the
//! largest group of overlapping input blocks; never by the size of the month.

use super::Resolution;
use crate::chunk::Chunk;
use crate::error::{Error, Result};
use crate::manifest::SegmentMeta;
use crate::model::{SeriesId, SeriesKind};
use crate::read::{Order, ReadState, SeriesChunks};
use crate::segment::{EncodeOptions, EncodedSeries, FieldTable, Lineage, SegmentReader, SegmentWriter, WrittenSegment, map_interleaved};
use crate::time::{Month, TimeRange};
use roaring::RoaringBitmap;
use std::path::Path;
use std::sync::Arc;

/// Input bytes of the series encoded together before they are written out.
const WINDOW_INPUT_BYTES: u64 = 64 << 20;

/// What the merge needs to know of one series before reading it.
struct SeriesPlan {
    id: SeriesId,
    kind: SeriesKind,
    input_bytes: u64,
    input_rows: u64,
    /// Rows of the input that holds the most of this series: a metric series keeps at
    /// least this many after duplicates are resolved.
    largest_input_rows: u64,
    /// Rows before this time are left out (retention).
    keep_from: i64,
}

/// The segment a merge writes.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub fs: &'a crate::io::Fs,
    pub data_dir: &'a Path,
    pub month: Month,
    pub generation: u64,
    pub level: u8,
    /// Detail, or a summary tier: summary rows are one per bucket, the newest run's winning.
    pub tier: Resolution,
    /// Retention: the earliest time kept of each series (`i64::MIN` keeps all of it); rows
    /// before it are left out. `None` keeps everything.
    pub keep_from: Option<&'a (dyn Fn(SeriesId) -> i64 + Sync)>,
}

/// Where a merge stands, for progress reports.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MergeProgress {
    pub series_done: u64,
    pub series_total: u64,
    pub input_bytes_done: u64,
    pub input_bytes_total: u64,
}

/// Merges `inputs` (one month's segments, a contiguous run by sequence number) into
/// segment `generation`. Returns `None` when `cancelled` said so (the temporary file is
/// removed). The output is checked before it is returned: every block decodes and
/// matches its statistics, event rows are all there, metric rows are between the largest
/// input's count and the sum.
pub(crate) fn merge_month(
    target: Target<'_>,
    inputs: &[Arc<SegmentReader>],
    encode: EncodeOptions,
    progress: &mut dyn FnMut(MergeProgress),
    cancelled: &dyn Fn() -> bool,
) -> Result<Option<WrittenSegment>> {
    let Target {
        fs,
        data_dir,
        month,
        generation,
        level,
        tier,
        keep_from,
    } = target;
    let mut plans = plan_series(inputs)?;
    if tier != Resolution::Detail {
        // Summary rows are one per bucket, the newest run's replacing the earlier whole.
        for p in &mut plans {
            p.kind = SeriesKind::Metric;
        }
    }
    if let Some(keep_from) = keep_from {
        for p in &mut plans {
            p.keep_from = keep_from(p.id);
        }
        plans.retain(|p| p.keep_from < month.end_ns());
    }
    let fields = FieldTable::from_fields(inputs.iter().flat_map(|s| s.fields().iter().cloned()));
    let state = ReadState {
        segments: inputs.to_vec(),
        ..ReadState::default()
    };
    let lineage = Lineage {
        min_seq: inputs.iter().map(|s| s.meta().min_seq).min(),
        max_seq: inputs.iter().map(|s| s.meta().max_seq).max().unwrap_or(0),
        level,
        tier,
    };
    let mut at = MergeProgress {
        series_total: plans.len() as u64,
        input_bytes_total: plans.iter().map(|p| p.input_bytes).sum(),
        ..MergeProgress::default()
    };
    let mut writer = SegmentWriter::create(fs, data_dir, month, generation, fields.clone())?;
    let mut start = 0;
    while start < plans.len() {
        if cancelled() {
            writer.abandon()?;
            return Ok(None);
        }
        let mut end = start;
        let mut window_bytes = 0;
        while end < plans.len() && (end == start || window_bytes + plans[end].input_bytes <= WINDOW_INPUT_BYTES) {
            window_bytes += plans[end].input_bytes;
            end += 1;
        }
        let window = &plans[start..end];
        let encoded: Result<Vec<EncodedSeries>> =
            map_interleaved(window, encode.threads, |p| merge_series(&state, month, tier, p, &fields, encode))
                .into_iter()
                .collect();
        let encoded = match encoded {
            Ok(e) => e,
            Err(e) => {
                writer.abandon()?;
                return Err(e);
            }
        };
        for (plan, series) in window.iter().zip(encoded) {
            if let Err(e) = check_series(plan, &series) {
                writer.abandon()?;
                return Err(e);
            }
            writer.append(series)?;
        }
        // The inputs are read once, in order: their pages need not stay resident.
        for input in inputs {
            input.release_pages();
        }
        at.series_done = end as u64;
        at.input_bytes_done += window_bytes;
        progress(at);
        start = end;
    }
    let written = writer.finish_as(lineage)?;
    // Read the new file back as a reader would before anyone is pointed at it.
    SegmentReader::open(&written.path, &written.meta)?.verify()?;
    Ok(Some(written))
}

fn plan_series(inputs: &[Arc<SegmentReader>]) -> Result<Vec<SeriesPlan>> {
    let mut all = RoaringBitmap::new();
    for s in inputs {
        all |= s.series_set();
    }
    let mut plans = Vec::with_capacity(all.len() as usize);
    for id in &all {
        let mut plan = SeriesPlan {
            id,
            kind: SeriesKind::Metric,
            input_bytes: 0,
            input_rows: 0,
            largest_input_rows: 0,
            keep_from: i64::MIN,
        };
        let mut kinds = Vec::new();
        for s in inputs {
            if let Some(entry) = s.series(id)? {
                kinds.push(entry.kind);
                let rows: u64 = entry.blocks.iter().map(|b| b.rows as u64).sum();
                plan.input_rows += rows;
                plan.largest_input_rows = plan.largest_input_rows.max(rows);
                plan.input_bytes += entry.blocks.iter().map(|b| b.len as u64).sum::<u64>();
            }
        }
        plan.kind = kinds[0];
        if kinds.iter().any(|k| *k != plan.kind) {
            return Err(Error::malformed(
                inputs[0].path(),
                0,
                format!("series {id} has different kinds in segments of one month"),
            ));
        }
        plans.push(plan);
    }
    Ok(plans)
}

/// One series' rows of the month, merged, re-blocked into blocks within the limits of its
/// kind (`block_max_rows`, and `block_max_span` for numeric samples).
fn merge_series(
    state: &ReadState,
    month: Month,
    tier: Resolution,
    plan: &SeriesPlan,
    fields: &FieldTable,
    encode: EncodeOptions,
) -> Result<EncodedSeries> {
    let limits = encode.block_limits(plan.kind);
    let block_rows = limits.max_rows;
    let mut out = EncodedSeries::new(plan.id, plan.kind);
    let mut pending = Chunk::default();
    let range = month.range();
    let range = TimeRange::new(range.start.max(plan.keep_from), range.end);
    let chunks = if tier == Resolution::Detail {
        SeriesChunks::new(state, u64::MAX, plan.id, plan.kind, range, None, Order::Ascending)?
    } else {
        SeriesChunks::summaries(state, plan.id, range, None)?
    };
    for chunk in chunks {
        let chunk = chunk?;
        if pending.is_empty() {
            pending = chunk;
        } else {
            pending.append(&chunk);
        }
        // Keep up to two blocks' worth so the last blocks can be split evenly.
        while pending.len() >= 2 * block_rows {
            out.add_blocks(&pending.slice_rows(0..block_rows), fields, limits, encode.zstd_level_for(plan.kind));
            pending = pending.slice_rows(block_rows..pending.len());
        }
    }
    if !pending.is_empty() {
        out.add_blocks(&pending, fields, limits, encode.zstd_level_for(plan.kind));
    }
    Ok(out)
}

fn check_series(plan: &SeriesPlan, series: &EncodedSeries) -> Result<()> {
    let rows = series.rows();
    let expected = if plan.keep_from != i64::MIN {
        // Retention cut the series: what is left cannot be counted from metadata alone.
        rows <= plan.input_rows
    } else if plan.kind.is_event() {
        rows == plan.input_rows
    } else {
        rows >= plan.largest_input_rows && rows <= plan.input_rows
    };
    if expected {
        return Ok(());
    }
    Err(Error::Invariant(format!(
        "compaction produced {rows} rows for series {} from {} input rows (largest input {})",
        plan.id, plan.input_rows, plan.largest_input_rows
    )))
}

/// Sums the manifest entries of the inputs: (bytes, rows, points).
pub(crate) fn totals(inputs: &[SegmentMeta]) -> (u64, u64, u64) {
    inputs
        .iter()
        .fold((0, 0, 0), |(b, r, p), s| (b + s.file_len, r + s.rows, p + s.points))
}
