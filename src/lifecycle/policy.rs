//! Which segments to merge: a pure function of the manifest's segment list, the options
//! and the time, so it can be tested on any timeline.
//!
//! Within a month, segments ordered by generation are ordered by the sequence numbers of
//! their rows (every flush covers later writes than the one before, and a merge output
//! takes the place of its inputs). A merge must take a run that is contiguous in that
//! order, or a metric row could lose to an older version of itself; both rules below take
//! a suffix of the month (tiered) or the whole month (sealed).
//!
//! - **Sealed**: a month that ended at least `seal_after` ago and has two or more
//!   segments is merged whole into one.
//! - **Tiered**: in a month still written to, the longest trailing run of segments at
//!   level `<= L` is merged into one segment of level `L + 1` once it holds
//!   `min_segments` of level `L` itself (so one large segment is not rewritten to absorb
//!   a few small ones); the lowest such `L` is chosen, so small flushes merge often and large
//!   outputs seldom (each row is rewritten about once per level).

use super::Resolution;
use crate::manifest::SegmentMeta;
use crate::options::CompactionOptions;
use crate::time::Month;

/// One merge: the generations of a contiguous run of one month's segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Task {
    /// Detail, or the summary tier whose segments are merged.
    pub tier: Resolution,
    pub month: Month,
    /// Ascending.
    pub inputs: Vec<u64>,
    /// Level of the output.
    pub level: u8,
    pub reason: &'static str,
}

/// The merges due at `now_ns`, oldest month first. `segments` is one tier's list, sorted by
/// (month, generation), as in the manifest.
pub(crate) fn plan(segments: &[SegmentMeta], options: &CompactionOptions, now_ns: i64) -> Vec<Task> {
    let seal_after = i64::try_from(options.seal_after.as_nanos()).unwrap_or(i64::MAX);
    let mut tasks = Vec::new();
    for month_segments in segments.chunk_by(|a, b| (a.tier, a.month) == (b.tier, b.month)) {
        if month_segments.len() < 2 {
            continue;
        }
        let month = month_segments[0].month;
        let max_level = month_segments.iter().map(|s| s.level).max().unwrap_or(0);
        if month.end_ns().saturating_add(seal_after) <= now_ns {
            tasks.push(Task {
                tier: month_segments[0].tier,
                month,
                inputs: month_segments.iter().map(|s| s.generation).collect(),
                level: max_level.saturating_add(1),
                reason: "sealed",
            });
            continue;
        }
        for level in 0..=max_level {
            let run = month_segments.iter().rev().take_while(|s| s.level <= level).count();
            let of_this_level = month_segments[month_segments.len() - run..]
                .iter()
                .filter(|s| s.level == level)
                .count();
            if of_this_level >= options.min_segments.max(2) {
                tasks.push(Task {
                    tier: month_segments[0].tier,
                    month,
                    inputs: month_segments[month_segments.len() - run..].iter().map(|s| s.generation).collect(),
                    level: level.saturating_add(1),
                    reason: "tiered",
                });
                break;
            }
        }
    }
    tasks
}

/// Every month with two or more segments merged whole (`optimize`): valid at any time,
/// since a whole month is a contiguous run.
pub(crate) fn plan_all(segments: &[SegmentMeta]) -> Vec<Task> {
    segments
        .chunk_by(|a, b| (a.tier, a.month) == (b.tier, b.month))
        .filter(|m| m.len() >= 2)
        .map(|m| Task {
            tier: m[0].tier,
            month: m[0].month,
            inputs: m.iter().map(|s| s.generation).collect(),
            level: m.iter().map(|s| s.level).max().unwrap_or(0).saturating_add(1),
            reason: "optimize",
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn seg(month: Month, generation: u64, level: u8) -> SegmentMeta {
        SegmentMeta {
            month,
            generation,
            file_len: 100,
            file_crc: 0,
            min_ts: month.start_ns(),
            max_ts: month.start_ns(),
            rows: 1,
            points: 1,
            series: 1,
            min_seq: generation,
            max_seq: generation,
            level,
            tier: Resolution::Detail,
        }
    }

    fn options() -> CompactionOptions {
        CompactionOptions {
            min_segments: 3,
            seal_after: Duration::from_secs(3600),
            ..CompactionOptions::default()
        }
    }

    #[test]
    fn an_open_month_merges_trailing_runs_by_tier() {
        let m = Month::new(2026, 11).unwrap();
        let now = m.start_ns() + 86_400_000_000_000;
        let two = vec![seg(m, 1, 0), seg(m, 2, 0)];
        assert!(plan(&two, &options(), now).is_empty(), "below min_segments");
        let four = vec![seg(m, 1, 1), seg(m, 2, 0), seg(m, 3, 0), seg(m, 4, 0)];
        let tasks = plan(&four, &options(), now);
        assert_eq!(tasks.len(), 1);
        assert_eq!(tasks[0].inputs, vec![2, 3, 4], "the level-1 segment is left alone");
        assert_eq!(tasks[0].level, 1);
        let tiers = vec![seg(m, 1, 1), seg(m, 2, 1), seg(m, 3, 1), seg(m, 4, 0)];
        let tasks = plan(&tiers, &options(), now);
        assert_eq!(tasks[0].inputs, vec![1, 2, 3, 4]);
        assert_eq!(tasks[0].level, 2);
        // A higher tier is rewritten only when enough of its own level accumulated.
        let split = vec![seg(m, 1, 0), seg(m, 2, 0), seg(m, 3, 2), seg(m, 4, 0), seg(m, 5, 0)];
        assert!(plan(&split, &options(), now).is_empty());
        let big_tier = vec![seg(m, 1, 2), seg(m, 2, 2), seg(m, 3, 0), seg(m, 4, 2)];
        assert_eq!(plan(&big_tier, &options(), now)[0].inputs, vec![1, 2, 3, 4]);
    }

    #[test]
    fn a_month_past_its_end_is_sealed_into_one_segment() {
        let m = Month::new(2026, 10).unwrap();
        let segments = vec![seg(m, 1, 2), seg(m, 7, 0)];
        let just_after = m.end_ns() + 1;
        assert!(plan(&segments, &options(), just_after).is_empty(), "within seal_after");
        let later = m.end_ns() + 3_600_000_000_000;
        let tasks = plan(&segments, &options(), later);
        assert_eq!(
            tasks,
            vec![Task {
                tier: Resolution::Detail,
                month: m,
                inputs: vec![1, 7],
                level: 3,
                reason: "sealed"
            }]
        );
        assert!(plan(&segments[..1], &options(), later).is_empty(), "one segment is done");
    }

    #[test]
    fn months_are_planned_independently_oldest_first() {
        let a = Month::new(2026, 9).unwrap();
        let b = Month::new(2026, 11).unwrap();
        let segments = vec![seg(a, 1, 0), seg(a, 3, 0), seg(b, 2, 0), seg(b, 4, 0), seg(b, 5, 0)];
        let tasks = plan(&segments, &options(), b.start_ns() + 1);
        assert_eq!(
            tasks.iter().map(|t| (t.month, t.reason)).collect::<Vec<_>>(),
            vec![(a, "sealed"), (b, "tiered")]
        );
    }
}
