//! Retention in the engine: drop detail and summaries past their horizons.
//!
//! 1. Compute each rule's horizons from the clock; from now on writes before a series'
//!    detail horizon are refused (they would be dropped, or clobber summaries).
//! 2. Flush and summarise, so every day about to lose its detail has its summaries.
//! 3. Plan per tier and month: a month whose every series is past its horizon is dropped
//!    whole (its files and, for detail, its text index); a month where some series are is
//!    rewritten through the merge without the expired rows (generations reserved now, so
//!    sequence order holds), and read back.
//! 4. Under the flush lock: one manifest write removes the dropped and replaced segments,
//!    adds the rewritten ones and records the horizons; the text index of each touched
//!    month is dropped or rebuilt; the read state is swapped and old readers retired.
//!
//! Months restored from an archive are pinned: retention leaves their detail alone.

use super::Inner;
use super::publish::Change;
use super::summary::SummaryReport;
use crate::error::{Error, Result};
use crate::files::FileKind;
use crate::lifecycle::merge;
use crate::manifest::Resolution;
use crate::manifest::{Manifest, SegmentMeta, tier_dir};
use crate::model::SeriesId;
use crate::read::ReadState;
use crate::retention::Horizon;
use crate::retention::RetentionOptions;
use crate::retention::{Horizons, horizon, rule_for};
use crate::segment::SegmentReader;
use crate::time::{Month, format_rfc3339};
use roaring::RoaringBitmap;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// One rule's horizons.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleHorizon {
    /// `default`, `kind:<kind>` or `measurement:<name>`.
    pub rule: String,
    /// Detail rows before this time (RFC 3339, a UTC day start) are dropped.
    pub detail_before: String,
    /// Summaries before this time are dropped.
    pub summaries_before: String,
    /// Series under the rule.
    pub series: u64,
}

/// What retention does (or would do) to one month of one tier.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetentionAction {
    /// `detail`, `hour`, `day` or `week`.
    pub tier: Resolution,
    /// `YYYY-MM`.
    pub month: String,
    /// `drop` (every series of the month is past its horizon: files deleted) or `rewrite`
    /// (the month's segments are rewritten without the expired rows).
    pub action: &'static str,
    /// Segment files concerned.
    pub segments: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Their rows.
    pub rows: u64,
    /// Series with rows past their horizon.
    pub series_expired: u64,
    /// Rows left after a rewrite (known once applied).
    pub rows_kept: Option<u64>,
    /// Bytes left after a rewrite (known once applied).
    pub bytes_kept: Option<u64>,
}

/// What [`crate::Engine::retention_plan`] and [`crate::Engine::apply_retention`] report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RetentionReport {
    /// True when the actions were carried out.
    pub applied: bool,
    /// The clock's time the horizons derive from (RFC 3339).
    pub now: String,
    /// Horizons of every rule that has series.
    pub horizons: Vec<RuleHorizon>,
    /// Months dropped or rewritten.
    pub actions: Vec<RetentionAction>,
    /// Bytes the store holds less afterwards (planned: the bytes of dropped months).
    pub bytes_freed: u64,
    /// The summary run that preceded an applied retention.
    pub summary: Option<SummaryReport>,
    /// Wall time.
    pub seconds: f64,
}

/// Each rule's horizons and how many series it covers.
type RuleCounts = BTreeMap<String, (Horizon, u64)>;

struct Planned {
    action: RetentionAction,
    inputs: Vec<SegmentMeta>,
    /// Per series: the earliest time kept.
    keep_from: BTreeMap<SeriesId, i64>,
}

impl Inner {
    /// Horizons of every rule with series, at the clock's time.
    fn rule_horizons(&self, now: i64) -> (RuleCounts, Vec<Horizon>) {
        let options: &RetentionOptions = &self.options.retention;
        let catalog = self.writes.catalog.read();
        let mut rules: BTreeMap<String, (Horizon, u64)> = BTreeMap::new();
        let mut per_series = Vec::with_capacity(catalog.len());
        for key in catalog.keys() {
            let (name, rule) = rule_for(options, key);
            let h = horizon(rule, now);
            rules.entry(name).or_insert((h, 0)).1 += 1;
            per_series.push(h);
        }
        (rules, per_series)
    }

    /// The actions retention would take now, from `state`.
    fn plan_retention(
        &self,
        state: &ReadState,
        pinned: &std::collections::BTreeSet<Month>,
        per_series: &[Horizon],
    ) -> Result<Vec<Planned>> {
        let mut planned = Vec::new();
        let tiers = [
            (Resolution::Detail, state.segments.clone()),
            (Resolution::Hour, state.summaries_of(Resolution::Hour)),
            (Resolution::Day, state.summaries_of(Resolution::Day)),
            (Resolution::Week, state.summaries_of(Resolution::Week)),
        ];
        for (tier, readers) in tiers {
            for month_readers in readers.chunk_by(|a, b| a.meta().month == b.meta().month) {
                let month = month_readers[0].meta().month;
                if tier == Resolution::Detail && pinned.contains(&month) {
                    continue;
                }
                let mut series = RoaringBitmap::new();
                for r in month_readers {
                    series |= r.series_set();
                }
                let mut all_expired = true;
                let mut keep_from = BTreeMap::new();
                for id in &series {
                    let Some(h) = per_series.get(id as usize) else {
                        all_expired = false;
                        continue;
                    };
                    let h = if tier == Resolution::Detail { h.detail } else { h.summaries };
                    let (mut oldest, mut newest) = (i64::MAX, i64::MIN);
                    for r in month_readers {
                        if let Some(entry) = r.series(id)? {
                            oldest = oldest.min(entry.blocks.first().map_or(i64::MAX, |b| b.min_ts));
                            newest = newest.max(entry.blocks.last().map_or(i64::MIN, |b| b.max_ts));
                        }
                    }
                    // A series that stopped before its horizon has nothing left in the month
                    // (so a month of such series is dropped, not rewritten into nothing).
                    if newest >= h {
                        all_expired = false;
                    }
                    if oldest < h {
                        keep_from.insert(id, h);
                    }
                }
                if keep_from.is_empty() {
                    continue;
                }
                let inputs: Vec<SegmentMeta> = month_readers.iter().map(|r| r.meta().clone()).collect();
                planned.push(Planned {
                    action: RetentionAction {
                        tier,
                        month: month.to_string(),
                        action: if all_expired { "drop" } else { "rewrite" },
                        segments: inputs.len(),
                        bytes: inputs.iter().map(|m| m.file_len).sum(),
                        rows: inputs.iter().map(|m| m.rows).sum(),
                        series_expired: keep_from.len() as u64,
                        rows_kept: None,
                        bytes_kept: None,
                    },
                    inputs,
                    keep_from,
                });
            }
        }
        Ok(planned)
    }

    fn report_horizons(&self, now: i64, rules: &RuleCounts) -> RetentionReport {
        RetentionReport {
            now: format_rfc3339(now),
            horizons: rules
                .iter()
                .map(|(rule, (h, n))| RuleHorizon {
                    rule: rule.clone(),
                    detail_before: format_rfc3339(h.detail),
                    summaries_before: format_rfc3339(h.summaries),
                    series: *n,
                })
                .collect(),
            ..RetentionReport::default()
        }
    }

    /// What retention would drop now, without changing anything.
    pub(crate) fn retention_plan(&self) -> Result<RetentionReport> {
        let now = self.options.clock.now_ns();
        let (rules, per_series) = self.rule_horizons(now);
        let pinned = self.published.flush.lock().manifest.pinned.clone();
        let state = ReadState::clone(&self.published.state.read());
        let planned = self.plan_retention(&state, &pinned, &per_series)?;
        let mut report = self.report_horizons(now, &rules);
        report.bytes_freed = planned.iter().filter(|p| p.action.action == "drop").map(|p| p.action.bytes).sum();
        report.actions = planned.into_iter().map(|p| p.action).collect();
        Ok(report)
    }

    /// Summarises, then drops what is past retention. The caller holds the lifecycle lock.
    pub(crate) fn apply_retention_locked(&self, cancelled: &dyn Fn() -> bool) -> Result<RetentionReport> {
        let started = Instant::now();
        self.check_writable()?;
        let now = self.options.clock.now_ns();
        let (rules, per_series) = self.rule_horizons(now);
        // Horizons only move forward.
        let applied = {
            let previous = self.published.flush.lock().manifest.horizons.clone();
            let mut by_rule = previous.clone();
            for (rule, (h, _)) in &rules {
                let e = by_rule.entry(rule.clone()).or_insert(*h);
                e.detail = e.detail.max(h.detail);
                e.summaries = e.summaries.max(h.summaries);
            }
            Arc::new(Horizons { by_rule })
        };
        {
            // Under the writer lock: a write either is in the head already (and is flushed
            // below) or is checked against the new horizons.
            let _w = self.writes.writer.lock();
            *self.writes.horizons.write() = applied.clone();
        }
        let summary = self.summarize_locked(cancelled)?;
        let mut report = self.report_horizons(now, &rules);
        report.summary = Some(summary);
        if cancelled() {
            // The days about to lose their detail may not be summarised: drop nothing.
            return Ok(report);
        }

        let (pinned, state) = {
            let flush = self.published.flush.lock();
            (flush.manifest.pinned.clone(), ReadState::clone(&self.published.state.read()))
        };
        let mut planned = self.plan_retention(&state, &pinned, &per_series)?;
        let rewrites = planned.iter().filter(|p| p.action.action == "rewrite").count() as u64;
        let mut generation = self.reserve_generations(rewrites);
        let mut outputs: Vec<(usize, SegmentMeta, Arc<SegmentReader>)> = Vec::new();
        let written = (|| -> Result<()> {
            for (i, p) in planned.iter_mut().enumerate() {
                if p.action.action != "rewrite" {
                    continue;
                }
                let month = Month::parse(&p.action.month).ok_or_else(|| Error::Invariant("bad month in plan".into()))?;
                let readers = p
                    .inputs
                    .iter()
                    .map(|m| SegmentReader::open(&m.path(&self.data_dir), m).map(Arc::new))
                    .collect::<Result<Vec<_>>>()?;
                let keep = |id: SeriesId| p.keep_from.get(&id).copied().unwrap_or(i64::MIN);
                let level = p.inputs.iter().map(|m| m.level).max().unwrap_or(0);
                let out = merge::merge_month(
                    merge::Target {
                        fs: &self.fs,
                        data_dir: &tier_dir(&self.data_dir, p.action.tier),
                        month,
                        generation,
                        level,
                        tier: p.action.tier,
                        keep_from: Some(&keep),
                    },
                    &readers,
                    self.encode_options(),
                    &mut |_| {},
                    &|| false,
                )?;
                generation += 1;
                if let Some(w) = out {
                    p.action.rows_kept = Some(w.meta.rows);
                    p.action.bytes_kept = Some(w.meta.file_len);
                    let reader = Arc::new(SegmentReader::open(&w.path, &w.meta)?.with_cache(self.cache.clone()));
                    outputs.push((i, w.meta, reader));
                }
            }
            Ok(())
        })();
        if let Err(e) = written {
            for (_, meta, _) in &outputs {
                let _ = self.fs.remove_file(&meta.path(&self.data_dir));
            }
            return Err(e);
        }
        self.publish_retention(&planned, &outputs, &applied)?;
        report.bytes_freed = planned
            .iter()
            .map(|p| p.action.bytes.saturating_sub(p.action.bytes_kept.unwrap_or(0)))
            .sum();
        report.actions = planned.into_iter().map(|p| p.action).collect();
        report.applied = true;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    fn publish_retention(
        &self,
        planned: &[Planned],
        outputs: &[(usize, SegmentMeta, Arc<SegmentReader>)],
        applied: &Arc<Horizons>,
    ) -> Result<()> {
        let mut flush = self.published.flush.lock();
        // The text index of a touched detail month is derived data: drop it, and rebuild it
        // from what is left.
        let touched: Vec<Month> = planned
            .iter()
            .filter(|p| p.action.tier == Resolution::Detail)
            .filter_map(|p| Month::parse(&p.action.month))
            .collect();
        let last_seq = flush.manifest.last_seq;
        let change = Change {
            removed: planned.iter().flat_map(|p| p.inputs.iter().map(SegmentMeta::id)).collect(),
            added: outputs.iter().map(|(_, _, reader)| reader.clone()).collect(),
            edit: Some(Box::new(|manifest: &mut Manifest| manifest.horizons = applied.by_rule.clone())),
            horizons: Some(applied.clone()),
            ..Change::default()
        };
        // Commits dropped by an explicit rule leave the unique index after the manifest
        // that drops their rows is stored: a crash between the two leaves entries that
        // refuse the hash again, never a second copy of a commit.
        let expired_commits: Vec<(Month, &BTreeMap<SeriesId, i64>)> = planned
            .iter()
            .filter(|p| p.action.tier == Resolution::Detail)
            .filter_map(|p| Month::parse(&p.action.month).map(|m| (m, &p.keep_from)))
            .collect();
        self.publish(&mut flush, change, |flush, next| {
            let removed = self.writes.commits.write().remove_where(|l| {
                expired_commits.iter().any(|(month, keep_from)| {
                    Month::of(l.timestamp) == *month && keep_from.get(&l.series).is_some_and(|&h| l.timestamp < h)
                })
            });
            if removed > 0 {
                let encoded = self.writes.commits.read().encode(last_seq);
                self.fs.write_file_atomic(&FileKind::Commits.path(&self.dir), &encoded)?;
            }
            if touched.is_empty() {
                return Ok(());
            }
            let catalog = self.writes.catalog.read();
            let texts = crate::text::text_series(&catalog);
            for month in &touched {
                flush.text.drop_month(*month)?;
                if next.segments.iter().any(|s| s.meta().month == *month) {
                    flush.text.catch_up(*month, &next.segments, &catalog, &texts, last_seq)?;
                }
            }
            flush.text.close_writers_except(&[])
        })?;
        drop(flush);
        // Month directories left empty go; a failure here only leaves an empty directory.
        for p in planned {
            if let Some(month) = Month::parse(&p.action.month) {
                let _ = self
                    .fs
                    .remove_empty_dir(&tier_dir(&self.data_dir, p.action.tier).join(month.to_string()));
            }
        }
        Ok(())
    }

    /// Refuses rows older than the applied detail horizon of their series.
    pub(crate) fn check_horizons(&self, batch: &crate::model::Batch) -> Result<()> {
        let horizons = self.writes.horizons.read().clone();
        if horizons.by_rule.is_empty() {
            return Ok(());
        }
        // Rules go by kind and measurement: look each pair up once per batch (a batch's
        // many series usually share one measurement), not once per series.
        let mut by_rule: Vec<((crate::model::SeriesKind, &str), Option<i64>)> = Vec::new();
        let limits: Vec<Option<i64>> = batch
            .series
            .iter()
            .map(|key| {
                let pair = (key.kind(), key.measurement());
                if let Some((_, h)) = by_rule.iter().find(|(p, _)| *p == pair) {
                    return *h;
                }
                let h = horizons.for_series(&self.options.retention, key).map(|h| h.detail);
                by_rule.push((pair, h));
                h
            })
            .collect();
        for (i, row) in batch.rows.iter().enumerate() {
            if let Some(Some(h)) = limits.get(row.series as usize)
                && row.timestamp < *h
            {
                return Err(Error::Refused {
                    reason: format!(
                        "row {}: {} at {} is older than the retention horizon {} of its series: detail before it has been dropped",
                        i + 1,
                        batch.series[row.series as usize],
                        format_rfc3339(row.timestamp),
                        format_rfc3339(*h)
                    ),
                });
            }
        }
        Ok(())
    }
}
