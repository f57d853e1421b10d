//! Compaction in the engine: plan from the manifest, merge without locks, publish.
//!
//! 1. Under the flush lock: take the planned inputs from the manifest and reserve the
//!    output's generation (so a concurrent flush takes the next one).
//! 2. Without locks: check free space, merge the inputs into `<gen>.seg.tmp`, fsync,
//!    rename, read the file back (`lifecycle::merge`). Writes and flushes go on; a flush
//!    adds segments later in sequence order, which the merge does not touch.
//! 3. Under the flush lock: write the manifest without the inputs and with the output,
//!    then swap the read state. The inputs' readers are retired: each file is deleted when
//!    the last snapshot holding it drops.
//!
//! A crash before 3 leaves an unlisted output file (removed on open); after it, unlisted
//! inputs (removed on open). Either way the store holds each row exactly once.

use super::Inner;
use super::publish::Change;
use crate::error::{Error, Result};
use crate::io;
use crate::lifecycle::merge::{self, MergeProgress};
use crate::lifecycle::policy::{self, Task};
use crate::lifecycle::{CompactedMonth, CompactionProgress, CompactionReport, OptimizeReport, PlannedCompaction};
use crate::manifest::Resolution;
use crate::manifest::SegmentMeta;
use crate::segment::{EncodeOptions, SegmentReader};
use std::sync::Arc;
use std::time::Instant;

/// How often (by the clock) the background thread summarises and applies retention.
const RETENTION_EVERY_NS: i64 = 3600 * 1_000_000_000;

/// Rounds of planning in one call: a tiered merge can complete a run of the next tier.
const MAX_ROUNDS: usize = 8;

impl Inner {
    /// The merges the policy would run now.
    pub(crate) fn compaction_plan(&self) -> Vec<PlannedCompaction> {
        let manifest = self.published.flush.lock().manifest.clone();
        self.due_tasks(&manifest)
            .into_iter()
            .map(|task| {
                let inputs = inputs_of(manifest.list(task.tier), &task);
                let (bytes, rows, _) = merge::totals(&inputs);
                PlannedCompaction {
                    tier: task.tier,
                    month: task.month.to_string(),
                    segments: inputs.len(),
                    bytes,
                    rows,
                    level: task.level,
                    reason: task.reason,
                }
            })
            .collect()
    }

    /// The merges the policy asks for now, detail and summary tiers alike.
    fn due_tasks(&self, manifest: &crate::manifest::Manifest) -> Vec<Task> {
        let now = self.options.clock.now_ns();
        let mut tasks = policy::plan(&manifest.segments, &self.options.compaction, now);
        tasks.extend(policy::plan(&manifest.summaries, &self.options.compaction, now));
        tasks
    }

    /// Merges every month into one segment, merges each month's text index, and removes
    /// orphaned files.
    pub(crate) fn optimize(&self, progress: &mut dyn FnMut(&CompactionProgress), cancelled: &dyn Fn() -> bool) -> Result<OptimizeReport> {
        let _one_at_a_time = self.background.lifecycle.lock();
        self.check_writable()?;
        let mut report = OptimizeReport::default();
        let tasks = {
            let flush = self.published.flush.lock();
            let mut tasks = policy::plan_all(&flush.manifest.segments);
            tasks.extend(policy::plan_all(&flush.manifest.summaries));
            tasks
        };
        for task in &tasks {
            if cancelled() {
                break;
            }
            match self.run_task(task, progress, cancelled)? {
                Outcome::Merged(done) => report.compaction.merged.push(done),
                Outcome::Skipped(why) => report.compaction.skipped.push(why),
            }
        }
        let mut flush = self.published.flush.lock();
        report.text_months_merged = flush.text.merge_segments()?;
        // Only the text index changed: publish its new view.
        self.publish(&mut flush, Change::default(), |_, _| Ok(()))?;
        // Under the flush lock no segment is being written, so every `.seg.tmp` is left
        // over; an unlisted segment is an orphan unless a snapshot still reads it.
        let held: Vec<std::path::PathBuf> = {
            let mut retired = self.published.retired.lock();
            retired.retain(|w| w.strong_count() > 0);
            retired.iter().filter_map(|w| w.upgrade().map(|r| r.path().to_path_buf())).collect()
        };
        let listed: std::collections::HashSet<std::path::PathBuf> = flush
            .manifest
            .segments
            .iter()
            .chain(&flush.manifest.summaries)
            .map(|s| s.path(&self.data_dir))
            .collect();
        let mut month_dirs = Vec::new();
        for tier in [Resolution::Detail, Resolution::Hour, Resolution::Day, Resolution::Week] {
            month_dirs.extend(
                io::list_dir(&crate::manifest::tier_dir(&self.data_dir, tier))?
                    .into_iter()
                    .filter(|e| e.is_dir && crate::time::Month::parse(&e.name).is_some()),
            );
        }
        for dir in month_dirs {
            for file in io::list_dir(&dir.path)?.into_iter().filter(|e| !e.is_dir) {
                let orphan = file.name.ends_with(".seg.tmp")
                    || (file.name.ends_with(".seg") && !listed.contains(&file.path) && !held.contains(&file.path));
                if orphan {
                    self.fs.remove_file(&file.path)?;
                    report.orphans_removed.push(file.path);
                }
            }
        }
        let months: Vec<crate::time::Month> = flush.manifest.segments.iter().map(|s| s.month).collect();
        report
            .orphans_removed
            .extend(crate::text::TextStore::remove_orphans(&self.fs, &self.data_dir, &months)?);
        Ok(report)
    }

    /// Runs every merge the policy asks for, until none is due or `cancelled` says stop.
    pub(crate) fn compact(&self, progress: &mut dyn FnMut(&CompactionProgress), cancelled: &dyn Fn() -> bool) -> Result<CompactionReport> {
        let _one_at_a_time = self.background.lifecycle.lock();
        let mut report = CompactionReport::default();
        for _ in 0..MAX_ROUNDS {
            self.check_writable()?;
            let tasks = self.due_tasks(&self.published.flush.lock().manifest);
            if tasks.is_empty() {
                break;
            }
            let mut merged_any = false;
            for task in &tasks {
                if cancelled() {
                    report.skipped.push(format!("{}: the store is closing", task.month));
                    return Ok(report);
                }
                match self.run_task(task, progress, cancelled)? {
                    Outcome::Merged(done) => {
                        merged_any = true;
                        report.merged.push(done);
                    }
                    Outcome::Skipped(why) => report.skipped.push(why),
                }
            }
            if !merged_any {
                break;
            }
        }
        Ok(report)
    }

    fn run_task(&self, task: &Task, progress: &mut dyn FnMut(&CompactionProgress), cancelled: &dyn Fn() -> bool) -> Result<Outcome> {
        let started = Instant::now();
        let (generation, inputs) = {
            let mut flush = self.published.flush.lock();
            let inputs = inputs_of(flush.manifest.list(task.tier), task);
            if inputs.len() != task.inputs.len() {
                return Err(Error::Invariant(format!(
                    "segments planned for compaction of {} are no longer in the manifest",
                    task.month
                )));
            }
            let generation = flush.manifest.next_generation;
            flush.manifest.next_generation += 1;
            (generation, inputs)
        };
        let (input_bytes, input_rows, input_points) = merge::totals(&inputs);
        let needed = input_bytes.saturating_add(self.options.compaction.min_free_bytes);
        if let Some(free) = io::available_bytes(&self.data_dir)?
            && free < needed
        {
            return Ok(Outcome::Skipped(format!(
                "{}: {} bytes free, the merge needs about {input_bytes} plus the {} bytes compaction.min_free_bytes keeps free",
                task.month, free, self.options.compaction.min_free_bytes
            )));
        }
        // Private readers: the merge reads every block once and must not evict the cache.
        let readers = inputs
            .iter()
            .map(|meta| SegmentReader::open(&meta.path(&self.data_dir), meta).map(Arc::new))
            .collect::<Result<Vec<_>>>()?;
        let month = task.month.to_string();
        let mut report_progress = |at: MergeProgress| {
            progress(&CompactionProgress {
                month: month.clone(),
                series_done: at.series_done,
                series_total: at.series_total,
                input_bytes_done: at.input_bytes_done,
                input_bytes_total: at.input_bytes_total,
            })
        };
        let written = merge::merge_month(
            merge::Target {
                fs: &self.fs,
                data_dir: &crate::manifest::tier_dir(&self.data_dir, task.tier),
                month: task.month,
                generation,
                level: task.level,
                tier: task.tier,
                keep_from: None,
            },
            &readers,
            EncodeOptions::of(&self.options),
            &mut report_progress,
            cancelled,
        )?;
        drop(readers);
        let Some(written) = written else {
            return Ok(Outcome::Skipped(format!("{}: the store is closing", task.month)));
        };
        if let Err(e) = self.publish_merge(task, &written.meta) {
            self.remove_unpublished([written.path.as_path()]);
            return Err(e);
        }
        Ok(Outcome::Merged(CompactedMonth {
            tier: task.tier,
            month,
            reason: task.reason,
            input_segments: inputs.len(),
            input_bytes,
            input_rows,
            input_points,
            output_bytes: written.meta.file_len,
            output_rows: written.meta.rows,
            output_points: written.meta.points,
            seconds: started.elapsed().as_secs_f64(),
        }))
    }

    /// Replaces the task's inputs by `output` in the manifest and the read state.
    fn publish_merge(&self, task: &Task, output: &SegmentMeta) -> Result<()> {
        let reader = Arc::new(SegmentReader::open(&output.path(&self.data_dir), output)?.with_cache(self.cache.clone()));
        let change = Change {
            removed: task.inputs.iter().map(|&generation| (task.tier, task.month, generation)).collect(),
            added: vec![reader],
            ..Change::default()
        };
        self.publish(&mut self.published.flush.lock(), change, |_, _| Ok(()))
    }

    pub(crate) fn compactor_loop(self: Arc<Self>) {
        loop {
            {
                let mut st = self.background.compactor.lock();
                if !st.stop {
                    self.background.compactor_wake.wait_for(&mut st, self.options.compaction.interval);
                }
                if st.stop {
                    return;
                }
            }
            if self.is_poisoned() {
                continue;
            }
            let stopping = || self.background.compactor.lock().stop;
            let mut result = if self.options.compaction.background {
                self.compact(&mut |_| {}, &stopping).map(|_| ())
            } else {
                Ok(())
            };
            // Summaries and retention move by days: once an hour of the clock is enough
            // (and keeps the flush they start from happening every interval).
            let now = self.options.clock.now_ns();
            let due = self
                .background
                .compactor
                .lock()
                .last_retention
                .is_none_or(|t| now.saturating_sub(t) >= RETENTION_EVERY_NS);
            if result.is_ok() && self.options.retention.background && due && !stopping() {
                let _one_at_a_time = self.background.lifecycle.lock();
                result = self.apply_retention_locked(&stopping).map(|_| ());
                if result.is_ok() {
                    self.background.compactor.lock().last_retention = Some(now);
                }
            }
            if let Err(e) = result {
                self.background.compactor.lock().last_error = Some(e.to_string());
            }
        }
    }
}

enum Outcome {
    Merged(CompactedMonth),
    Skipped(String),
}

fn is_input(task: &Task, segment: &SegmentMeta) -> bool {
    segment.tier == task.tier && segment.month == task.month && task.inputs.binary_search(&segment.generation).is_ok()
}

fn inputs_of(segments: &[SegmentMeta], task: &Task) -> Vec<SegmentMeta> {
    segments.iter().filter(|s| is_input(task, s)).cloned().collect()
}
