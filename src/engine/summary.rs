//! Summarising in the engine: every UTC day that has been over for
//! `retention.summarize_after` is rolled up once into hourly and daily summary rows, and
//! every ISO week whose last day is done into a weekly row (from the daily rows, so nothing
//! is recomputed from detail). Days that receive rows after they were summarised are marked
//! dirty by the flush that writes those rows and are rolled up again; a newer run's rows
//! win a bucket.
//!
//! 1. Flush, so every acknowledged row is in a segment.
//! 2. Under the flush lock: the days to do are those from the watermark to the target
//!    (today minus `summarize_after`, as a day start) plus the dirty days; record the run's
//!    target, so a flush from now on marks every row before it as late.
//! 3. Without locks: per month, per window of series, read the days' detail through the
//!    read path, build hours and days, write one hour and one day segment (temporary name,
//!    fsync, rename), read them back. Then the completed weeks, from the day tier.
//! 4. Under the flush lock: publish the segments, the new watermark and the dirty days
//!    that remain (those marked during the run) in one manifest write, and swap the read
//!    state.

use super::Inner;
use super::publish::Change;
use crate::error::{Error, Result};
use crate::head::Head;
use crate::manifest::Resolution;
use crate::manifest::{Manifest, SegmentMeta, tier_dir};
use crate::model::{SeriesId, SeriesKind};
use crate::read::{Order, ReadState, SeriesChunks};
use crate::rollup::{self as summary, Buckets};
use crate::segment::{EncodeOptions, EncodedSeries, FieldTable, Lineage, SegmentReader, SegmentWriter, map_interleaved};
use crate::time::day_start;
use crate::time::{Month, TimeRange};
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

/// Series summarised together before their rows are written out.
const WINDOW_SERIES: usize = 512;
const WEEK_NS: i64 = 7 * crate::time::NANOS_PER_DAY;

/// A summary run in progress: flushes mark rows before `target` as late.
#[derive(Debug, Default)]
pub(crate) struct SummaryRun {
    pub target: i64,
    /// Days marked dirty by flushes during the run: they stay dirty after it.
    pub added: BTreeSet<i64>,
}

/// What [`crate::Engine::summarize`] did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SummaryReport {
    /// UTC days with rows rolled up (including days rolled up again because late rows
    /// arrived).
    pub days: usize,
    /// Days rolled up again because rows arrived after they were summarised.
    pub days_redone: usize,
    /// Summary rows written: hourly, daily, weekly.
    pub hour_rows: u64,
    /// Daily rows written.
    pub day_rows: u64,
    /// Weekly rows written.
    pub week_rows: u64,
    /// Summary segment files written.
    pub segments: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Every day before this (RFC 3339) is summarised; `None` before any data.
    pub watermark: Option<String>,
    /// Wall time.
    pub seconds: f64,
}

struct Output {
    meta: SegmentMeta,
    reader: Arc<SegmentReader>,
}

/// Contiguous runs of days as time ranges.
fn day_ranges(days: &BTreeSet<i64>) -> Vec<TimeRange> {
    let mut ranges: Vec<TimeRange> = Vec::new();
    for &d in days {
        match ranges.last_mut() {
            Some(r) if r.end == d => r.end = d + crate::time::NANOS_PER_DAY,
            _ => ranges.push(TimeRange::new(d, d + crate::time::NANOS_PER_DAY)),
        }
    }
    ranges
}

impl Inner {
    /// The days of rows older than the summary watermark (or a running summary's target):
    /// they must be rolled up again. Called by the flush with the rows it writes.
    pub(crate) fn late_days(&self, watermark: Option<i64>, head: &Head) -> BTreeSet<i64> {
        let run_target = self.background.summary_run.lock().as_ref().map(|r| r.target);
        let Some(limit) = watermark.into_iter().chain(run_target).max() else {
            return BTreeSet::new();
        };
        let mut days = BTreeSet::new();
        head.for_each_timestamp_below(limit, |t| {
            days.insert(day_start(t));
        });
        if !days.is_empty()
            && let Some(run) = self.background.summary_run.lock().as_mut()
        {
            run.added.extend(days.iter().copied());
        }
        days
    }

    /// Rolls up every day that is due. The caller holds the lifecycle lock.
    pub(crate) fn summarize_locked(&self, cancelled: &dyn Fn() -> bool) -> Result<SummaryReport> {
        let started = Instant::now();
        self.check_writable()?;
        self.flush()?;
        let now = self.options.clock.now_ns();
        let settle = i64::try_from(self.options.retention.summarize_after.as_nanos()).unwrap_or(i64::MAX);
        let target = day_start(now.saturating_sub(settle));
        let (days, redone, state, previous) = {
            let flush = self.published.flush.lock();
            let m = &flush.manifest;
            let start = m
                .summary
                .watermark
                .or_else(|| m.segments.iter().map(|s| s.min_ts).min().map(day_start));
            let mut days: BTreeSet<i64> = m.summary.dirty_days.iter().copied().filter(|d| *d < target).collect();
            let redone = days.len();
            if let Some(start) = start {
                let mut d = start;
                while d < target {
                    days.insert(d);
                    d += crate::time::NANOS_PER_DAY;
                }
            }
            if days.is_empty() {
                return Ok(SummaryReport {
                    watermark: m.summary.watermark.map(crate::time::format_rfc3339),
                    seconds: started.elapsed().as_secs_f64(),
                    ..SummaryReport::default()
                });
            }
            *self.background.summary_run.lock() = Some(SummaryRun {
                target,
                added: BTreeSet::new(),
            });
            (days, redone, ReadState::clone(&self.published.state.read()), m.summary.watermark)
        };
        let mut days_with_rows = BTreeSet::new();
        let result = self.summarize_days(&days, target, &state, cancelled, &mut days_with_rows);
        let outputs = match result {
            Ok(Some(outputs)) => outputs,
            Ok(None) | Err(_) => {
                *self.background.summary_run.lock() = None;
                return result.map(|_| SummaryReport {
                    watermark: previous.map(crate::time::format_rfc3339),
                    ..SummaryReport::default()
                });
            }
        };
        let mut report = SummaryReport {
            days: days_with_rows.len(),
            days_redone: redone,
            segments: outputs.len(),
            bytes: outputs.iter().map(|o| o.meta.file_len).sum(),
            ..SummaryReport::default()
        };
        for o in &outputs {
            match o.meta.tier {
                Resolution::Hour => report.hour_rows += o.meta.rows,
                Resolution::Day => report.day_rows += o.meta.rows,
                _ => report.week_rows += o.meta.rows,
            }
        }
        let published = self.publish_summaries(&outputs, &days, target);
        *self.background.summary_run.lock() = None;
        if let Err(e) = published {
            let paths: Vec<_> = outputs.iter().map(|o| o.meta.path(&self.data_dir)).collect();
            self.remove_unpublished(paths.iter().map(|p| p.as_path()));
            return Err(e);
        }
        report.watermark = Some(crate::time::format_rfc3339(target.max(previous.unwrap_or(i64::MIN))));
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    fn publish_summaries(&self, outputs: &[Output], days: &BTreeSet<i64>, target: i64) -> Result<()> {
        let mut flush = self.published.flush.lock();
        let added = self
            .background
            .summary_run
            .lock()
            .as_ref()
            .map(|r| r.added.clone())
            .unwrap_or_default();
        let change = Change {
            added: outputs.iter().map(|o| o.reader.clone()).collect(),
            edit: Some(Box::new(|manifest: &mut Manifest| {
                manifest.summary.watermark = Some(manifest.summary.watermark.map_or(target, |w| w.max(target)));
                manifest.summary.dirty_days.retain(|d| !days.contains(d) || added.contains(d));
            })),
            ..Change::default()
        };
        self.publish(&mut flush, change, |_, _| Ok(()))
    }

    /// Writes the hour, day and week segments for `days`; `None` when cancelled (nothing
    /// is left behind).
    fn summarize_days(
        &self,
        days: &BTreeSet<i64>,
        target: i64,
        state: &ReadState,
        cancelled: &dyn Fn() -> bool,
        days_with_rows: &mut BTreeSet<i64>,
    ) -> Result<Option<Vec<Output>>> {
        let mut outputs: Vec<Output> = Vec::new();
        let outcome = (|| -> Result<bool> {
            let mut by_month: BTreeMap<Month, BTreeSet<i64>> = BTreeMap::new();
            for &d in days {
                by_month.entry(Month::of(d)).or_default().insert(d);
            }
            for (month, month_days) in &by_month {
                if cancelled() {
                    return Ok(false);
                }
                let inputs: Vec<Arc<SegmentReader>> = state.segments.iter().filter(|s| s.meta().month == *month).cloned().collect();
                if inputs.is_empty() {
                    continue;
                }
                outputs.extend(self.summarize_month(*month, &inputs, &day_ranges(month_days), days_with_rows)?);
            }
            // Weeks whose last day is done and that hold a day done now.
            let weeks: BTreeSet<i64> = days
                .iter()
                .map(|d| crate::time::Bucket::Week.start(*d))
                .filter(|w| w + WEEK_NS <= target)
                .collect();
            let mut day_tier = state.summaries_of(Resolution::Day);
            day_tier.extend(outputs.iter().filter(|o| o.meta.tier == Resolution::Day).map(|o| o.reader.clone()));
            day_tier.sort_by_key(|s| (s.meta().month, s.meta().generation));
            let mut weeks_by_month: BTreeMap<Month, Vec<i64>> = BTreeMap::new();
            for w in weeks {
                weeks_by_month.entry(Month::of(w)).or_default().push(w);
            }
            for (month, weeks) in &weeks_by_month {
                if cancelled() {
                    return Ok(false);
                }
                outputs.extend(self.summarize_weeks(*month, weeks, &day_tier)?);
            }
            Ok(true)
        })();
        match outcome {
            Ok(true) => Ok(Some(outputs)),
            other => {
                for o in &outputs {
                    let _ = self.fs.remove_file(&o.meta.path(&self.data_dir));
                }
                other.map(|_| None)
            }
        }
    }

    pub(crate) fn encode_options(&self) -> EncodeOptions {
        EncodeOptions::of(&self.options)
    }

    /// Reserves `n` generations; returns the first.
    pub(crate) fn reserve_generations(&self, n: u64) -> u64 {
        let mut flush = self.published.flush.lock();
        let first = flush.manifest.next_generation;
        flush.manifest.next_generation += n;
        first
    }

    /// Writes the month's hour and day segments; adds the days that had rows to
    /// `days_with_rows`.
    fn summarize_month(
        &self,
        month: Month,
        inputs: &[Arc<SegmentReader>],
        ranges: &[TimeRange],
        days_with_rows: &mut BTreeSet<i64>,
    ) -> Result<Vec<Output>> {
        let mut series = RoaringBitmap::new();
        for s in inputs {
            series |= s.series_set();
        }
        let ids: Vec<SeriesId> = series.iter().collect();
        let detail_fields = inputs.iter().flat_map(|s| s.fields().iter().cloned());
        let fields = FieldTable::from_fields(summary::summary_fields(detail_fields));
        let generation = self.reserve_generations(2);
        let encode = self.encode_options();
        let read_state = ReadState {
            segments: inputs.to_vec(),
            ..ReadState::default()
        };
        let kinds: Vec<SeriesKind> = {
            let catalog = self.writes.catalog.read();
            ids.iter()
                .map(|id| catalog.get(*id).map_or(SeriesKind::Metric, |k| k.kind()))
                .collect()
        };
        let mut hour_writer = TierWriter::create(&self.fs, &self.data_dir, Resolution::Hour, month, generation, fields.clone())?;
        let mut day_writer = TierWriter::create(&self.fs, &self.data_dir, Resolution::Day, month, generation + 1, fields.clone())?;
        let result = (|| -> Result<()> {
            let items: Vec<(SeriesId, SeriesKind)> = ids.iter().copied().zip(kinds).collect();
            for window in items.chunks(WINDOW_SERIES) {
                let encoded: Vec<Result<(EncodedSeries, EncodedSeries, Vec<i64>)>> =
                    map_interleaved(window, encode.threads, |(id, kind)| {
                        let mut hours = Buckets::new();
                        for range in ranges {
                            let chunks = SeriesChunks::new(&read_state, u64::MAX, *id, *kind, *range, None, Order::Ascending)?
                                .keep_rows_without_fields(true);
                            for chunk in chunks {
                                summary::add_rows(&chunk?, crate::time::Bucket::Fixed(crate::time::NANOS_PER_DAY / 24), &mut hours);
                            }
                        }
                        let mut days = Buckets::new();
                        summary::roll_up(&hours, crate::time::Bucket::Fixed(crate::time::NANOS_PER_DAY), &mut days);
                        Ok((
                            encode_summary(*id, &hours, &fields, encode),
                            encode_summary(*id, &days, &fields, encode),
                            days.keys().copied().collect(),
                        ))
                    });
                for e in encoded {
                    let (h, d, with_rows) = e?;
                    hour_writer.append(h)?;
                    day_writer.append(d)?;
                    days_with_rows.extend(with_rows);
                }
                for input in inputs {
                    input.release_pages();
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            hour_writer.abandon()?;
            day_writer.abandon()?;
            return Err(e);
        }
        let mut out = Vec::new();
        out.extend(hour_writer.finish(&self.cache)?);
        out.extend(day_writer.finish(&self.cache)?);
        Ok(out)
    }

    fn summarize_weeks(&self, month: Month, weeks: &[i64], day_tier: &[Arc<SegmentReader>]) -> Result<Vec<Output>> {
        let span = TimeRange::new(weeks[0], weeks[weeks.len() - 1] + WEEK_NS);
        let inputs: Vec<Arc<SegmentReader>> = day_tier
            .iter()
            .filter(|s| span.overlaps(s.meta().min_ts, s.meta().max_ts))
            .cloned()
            .collect();
        if inputs.is_empty() {
            return Ok(Vec::new());
        }
        let mut series = RoaringBitmap::new();
        for s in &inputs {
            series |= s.series_set();
        }
        let ids: Vec<SeriesId> = series.iter().collect();
        let fields = FieldTable::from_fields(inputs.iter().flat_map(|s| s.fields().iter().cloned()));
        let generation = self.reserve_generations(1);
        let encode = self.encode_options();
        let read_state = ReadState {
            segments: inputs.clone(),
            ..ReadState::default()
        };
        let mut writer = TierWriter::create(&self.fs, &self.data_dir, Resolution::Week, month, generation, fields.clone())?;
        let result = (|| -> Result<()> {
            for window in ids.chunks(WINDOW_SERIES) {
                let encoded: Vec<Result<EncodedSeries>> = map_interleaved(window, encode.threads, |id| {
                    let mut out = Buckets::new();
                    for &w in weeks {
                        let chunks = SeriesChunks::summaries(&read_state, *id, TimeRange::new(w, w + WEEK_NS), None)?;
                        for chunk in chunks {
                            summary::roll_up(&summary::from_chunk(&chunk?)?, crate::time::Bucket::Week, &mut out);
                        }
                    }
                    Ok(encode_summary(*id, &out, &fields, encode))
                });
                for e in encoded {
                    writer.append(e?)?;
                }
            }
            Ok(())
        })();
        if let Err(e) = result {
            writer.abandon()?;
            return Err(e);
        }
        Ok(writer.finish(&self.cache)?.into_iter().collect())
    }
}

fn encode_summary(id: SeriesId, buckets: &Buckets, fields: &FieldTable, encode: EncodeOptions) -> EncodedSeries {
    let mut out = EncodedSeries::new(id, SeriesKind::Metric);
    if !buckets.is_empty() {
        out.add_blocks(
            &summary::to_chunk(id, buckets),
            fields,
            encode.block_limits(SeriesKind::Metric),
            encode.zstd_level,
        );
    }
    out
}

/// A summary segment being written; finishing an empty one removes it.
pub(crate) struct TierWriter {
    writer: SegmentWriter,
    tier: Resolution,
    generation: u64,
    series: usize,
}

impl TierWriter {
    pub(crate) fn create(
        fs: &crate::io::Fs,
        data_dir: &std::path::Path,
        tier: Resolution,
        month: Month,
        generation: u64,
        fields: FieldTable,
    ) -> Result<TierWriter> {
        Ok(TierWriter {
            writer: SegmentWriter::create(fs, &tier_dir(data_dir, tier), month, generation, fields)?,
            tier,
            generation,
            series: 0,
        })
    }

    fn append(&mut self, series: EncodedSeries) -> Result<()> {
        if series.rows() > 0 {
            self.series += 1;
            self.writer.append(series)?;
        }
        Ok(())
    }

    fn abandon(self) -> Result<()> {
        self.writer.abandon()
    }

    /// Finishes and reads the file back; `None` when nothing was written.
    fn finish(self, cache: &Arc<crate::cache::BlockCache>) -> Result<Option<Output>> {
        if self.series == 0 {
            self.writer.abandon()?;
            return Ok(None);
        }
        // The run's version: a later run's rows win a bucket over this one's.
        let written = self.writer.finish_as(Lineage {
            min_seq: Some(self.generation),
            max_seq: self.generation,
            level: 0,
            tier: self.tier,
        })?;
        let reader = SegmentReader::open(&written.path, &written.meta)?;
        reader.verify()?;
        if written.meta.tier != self.tier {
            return Err(Error::Invariant("summary segment written in the wrong tier".into()));
        }
        Ok(Some(Output {
            meta: written.meta,
            reader: Arc::new(reader.with_cache(cache.clone())),
        }))
    }
}
