//! Accumulators: the running state of aggregates over one field (or over rows, for
//! `count(*)`) in one group and bucket. Fed row by row or, where a block lies wholly inside a
//! bucket, from its statistics; merged across blocks, series and threads.

use super::model::AggregateFn;
use crate::model::FieldValue;
use crate::rollup::sketch::QuantileSketch;
use crate::rollup::{FieldSummary, fold_extreme};
use crate::segment::ColumnStats;

/// Orders rows for `first` and `last`: time, then series id, then record id.
pub(crate) type RowKey = (i64, u32, u64);

/// What the aggregates of one slot need beyond the cheap running values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Needs {
    pub first_last: bool,
    pub stddev: bool,
    pub percentile: bool,
}

impl Needs {
    pub(crate) fn add(&mut self, f: AggregateFn) {
        match f {
            AggregateFn::First | AggregateFn::Last => self.first_last = true,
            AggregateFn::Stddev => self.stddev = true,
            AggregateFn::Percentile(_) => self.percentile = true,
            _ => {}
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Acc {
    /// Present values of any type (rows, for `count(*)`).
    pub count: u64,
    numeric: u64,
    sum_f: f64,
    sum_i: i128,
    any_float: bool,
    min_f: Option<f64>,
    max_f: Option<f64>,
    min_i: Option<i64>,
    max_i: Option<i64>,
    first: Option<(RowKey, FieldValue)>,
    last: Option<(RowKey, FieldValue)>,
    n: u64,
    mean: f64,
    m2: f64,
    values: Vec<f64>,
    /// Set once a summary contributed: percentiles then come from the sketch (exact values
    /// are added to it too).
    sketch: Option<QuantileSketch>,
}

impl Acc {
    fn first_last(&mut self, key: RowKey, value: impl FnOnce() -> FieldValue) {
        let is_first = self.first.as_ref().is_none_or(|(k, _)| key < *k);
        let is_last = self.last.as_ref().is_none_or(|(k, _)| key > *k);
        if is_first || is_last {
            let v = value();
            if is_first {
                self.first = Some((key, v.clone()));
            }
            if is_last {
                self.last = Some((key, v));
            }
        }
    }

    // The per-value methods run once per decoded value: inlined into the row loops, they
    // take about a quarter less time than as calls (measured on double-groupby-1).
    #[inline]
    fn numeric_f64(&mut self, v: f64, needs: Needs) {
        self.numeric += 1;
        self.sum_f += v;
        if !v.is_nan() {
            self.min_f = Some(self.min_f.map_or(v, |m| m.min(v)));
            self.max_f = Some(self.max_f.map_or(v, |m| m.max(v)));
            if needs.percentile {
                match &mut self.sketch {
                    Some(sketch) => sketch.add(v),
                    None => self.values.push(v),
                }
            }
        }
        if needs.stddev {
            self.n += 1;
            let delta = v - self.mean;
            self.mean += delta / self.n as f64;
            self.m2 += delta * (v - self.mean);
        }
    }

    #[inline]
    pub(crate) fn add_f64(&mut self, v: f64, key: RowKey, needs: Needs) {
        self.count += 1;
        self.any_float = true;
        self.numeric_f64(v, needs);
        if needs.first_last {
            self.first_last(key, || FieldValue::F64(v));
        }
    }

    /// A run of floats that all have values, for aggregates that need only the running
    /// values (count, sum, mean, min, max): one tight pass instead of a branch per value.
    /// The sum adds in the same order as [`Acc::add_f64`] would, so it is bit for bit the
    /// same; NaN is skipped by min and max as there.
    #[inline]
    pub(crate) fn add_f64_run(&mut self, values: &[f64]) {
        let (mut sum, mut low, mut high) = (self.sum_f, f64::INFINITY, f64::NEG_INFINITY);
        for &v in values {
            sum += v;
            // A comparison with NaN is false, so NaN is skipped; written as a comparison
            // rather than `f64::min` it is one instruction, not a NaN check and a blend in
            // the loop's dependency chain.
            low = if v < low { v } else { low };
            high = if v > high { v } else { high };
        }
        let n = values.len() as u64;
        self.count += n;
        self.numeric += n;
        self.sum_f = sum;
        self.any_float |= n > 0;
        // Only when some value was not NaN.
        if low <= high {
            self.min_f = Some(self.min_f.map_or(low, |m| m.min(low)));
            self.max_f = Some(self.max_f.map_or(high, |m| m.max(high)));
        }
    }

    #[inline]
    pub(crate) fn add_i64(&mut self, v: i64, key: RowKey, needs: Needs) {
        self.count += 1;
        self.sum_i += v as i128;
        self.min_i = Some(self.min_i.map_or(v, |m| m.min(v)));
        self.max_i = Some(self.max_i.map_or(v, |m| m.max(v)));
        self.numeric_f64(v as f64, needs);
        if needs.first_last {
            self.first_last(key, || FieldValue::I64(v));
        }
    }

    /// A non-numeric value: counted, and a candidate for first and last.
    pub(crate) fn add_other(&mut self, value: &FieldValue, key: RowKey, needs: Needs) {
        self.count += 1;
        if needs.first_last {
            self.first_last(key, || value.clone());
        }
    }

    /// Whether block statistics can stand in for the values of a column: never for the
    /// standard deviation or percentiles; for first and last only when every row has a value
    /// (so the first and last values are at the block's first and last timestamps) and the
    /// statistics carry them.
    pub(crate) fn stats_suffice(stats: &ColumnStats, dense: bool, needs: Needs) -> bool {
        if needs.stddev || needs.percentile {
            return false;
        }
        !needs.first_last || (dense && matches!(stats, ColumnStats::F64 { .. } | ColumnStats::I64 { .. }))
    }

    /// Adds a block column's statistics (`count` values; `first_key`/`last_key` are the
    /// block's first and last rows, used when the column is dense).
    pub(crate) fn add_stats(&mut self, stats: &ColumnStats, count: u64, first_key: RowKey, last_key: RowKey, needs: Needs) {
        if count == 0 {
            return;
        }
        self.count += count;
        match *stats {
            ColumnStats::F64 {
                min,
                max,
                sum,
                first,
                last,
            } => {
                self.any_float = true;
                self.numeric += count;
                self.sum_f += sum;
                if !min.is_nan() {
                    self.min_f = Some(self.min_f.map_or(min, |m| m.min(min)));
                }
                if !max.is_nan() {
                    self.max_f = Some(self.max_f.map_or(max, |m| m.max(max)));
                }
                if needs.first_last {
                    self.first_last(first_key, || FieldValue::F64(first));
                    self.first_last(last_key, || FieldValue::F64(last));
                }
            }
            ColumnStats::I64 {
                min,
                max,
                sum,
                first,
                last,
            } => {
                self.numeric += count;
                self.sum_i += sum;
                self.sum_f += sum as f64;
                self.min_i = Some(self.min_i.map_or(min, |m| m.min(min)));
                self.max_i = Some(self.max_i.map_or(max, |m| m.max(max)));
                self.min_f = Some(self.min_f.map_or(min as f64, |m| m.min(min as f64)));
                self.max_f = Some(self.max_f.map_or(max as f64, |m| m.max(max as f64)));
                if needs.first_last {
                    self.first_last(first_key, || FieldValue::I64(first));
                    self.first_last(last_key, || FieldValue::I64(last));
                }
            }
            ColumnStats::Bool { .. } | ColumnStats::Str | ColumnStats::Bytes => {}
        }
    }

    pub(crate) fn merge(&mut self, other: Acc) {
        self.count += other.count;
        self.numeric += other.numeric;
        self.sum_f += other.sum_f;
        self.sum_i += other.sum_i;
        self.any_float |= other.any_float;
        fold_extreme(&mut self.min_f, other.min_f, f64::min);
        fold_extreme(&mut self.max_f, other.max_f, f64::max);
        fold_extreme(&mut self.min_i, other.min_i, std::cmp::min);
        fold_extreme(&mut self.max_i, other.max_i, std::cmp::max);
        if let Some((k, v)) = other.first {
            self.first_last(k, || v.clone());
            if let Some((lk, lv)) = other.last {
                self.first_last(lk, || lv);
            }
        }
        if other.n > 0 {
            let n = self.n + other.n;
            let delta = other.mean - self.mean;
            self.m2 += other.m2 + delta * delta * (self.n as f64 * other.n as f64) / n as f64;
            self.mean += delta * other.n as f64 / n as f64;
            self.n = n;
        }
        match (&mut self.sketch, other.sketch) {
            (None, None) => self.values.extend(other.values),
            (Some(mine), theirs) => {
                other.values.iter().for_each(|v| mine.add(*v));
                if let Some(t) = theirs {
                    mine.merge(&t);
                }
            }
            (None, Some(mut theirs)) => {
                self.values.drain(..).chain(other.values).for_each(|v| theirs.add(v));
                self.sketch = Some(theirs);
            }
        }
    }

    /// Adds a stored summary of one series' bucket (see [`crate::rollup`]).
    /// Percentiles switch to the sketch; the standard deviation cannot be had from
    /// summaries (the planner refuses it).
    pub(crate) fn add_summary(&mut self, f: &FieldSummary, series: u32, needs: Needs) {
        self.count += f.count;
        self.numeric += f.numeric;
        self.any_float |= f.any_float;
        self.sum_f += f.sum_f;
        self.sum_i += f.sum_i;
        fold_extreme(&mut self.min_f, f.min_f, f64::min);
        fold_extreme(&mut self.max_f, f.max_f, f64::max);
        fold_extreme(&mut self.min_i, f.min_i, std::cmp::min);
        fold_extreme(&mut self.max_i, f.max_i, std::cmp::max);
        if needs.first_last {
            if let Some((t, v)) = &f.first {
                self.first_last((*t, series, 0), || v.clone());
            }
            if let Some((t, v)) = &f.last {
                self.first_last((*t, series, 0), || v.clone());
            }
        }
        if needs.percentile {
            let sketch = self.sketch.get_or_insert_with(QuantileSketch::default);
            self.values.drain(..).for_each(|v| sketch.add(v));
            sketch.merge(&f.sketch);
        }
    }

    /// The value of an aggregate; `None` when it has no value (no numeric input, fewer than
    /// two values for the standard deviation).
    pub(crate) fn result(&self, function: AggregateFn) -> Option<FieldValue> {
        let numeric = self.numeric > 0;
        match function {
            AggregateFn::Count => Some(FieldValue::I64(self.count as i64)),
            AggregateFn::Sum if numeric => Some(if self.any_float {
                FieldValue::F64(self.sum_f)
            } else {
                i64::try_from(self.sum_i).map_or(FieldValue::F64(self.sum_i as f64), FieldValue::I64)
            }),
            AggregateFn::Min if numeric => Some(match (self.any_float, self.min_i) {
                (false, Some(i)) => FieldValue::I64(i),
                _ => FieldValue::F64(self.min_f.unwrap_or(f64::NAN)),
            }),
            AggregateFn::Max if numeric => Some(match (self.any_float, self.max_i) {
                (false, Some(i)) => FieldValue::I64(i),
                _ => FieldValue::F64(self.max_f.unwrap_or(f64::NAN)),
            }),
            AggregateFn::Mean if numeric => Some(FieldValue::F64(self.sum_f / self.numeric as f64)),
            AggregateFn::First => self.first.as_ref().map(|(_, v)| v.clone()),
            AggregateFn::Last => self.last.as_ref().map(|(_, v)| v.clone()),
            AggregateFn::Stddev if self.n >= 2 => Some(FieldValue::F64((self.m2 / (self.n - 1) as f64).sqrt())),
            AggregateFn::Percentile(q) if self.sketch.as_ref().is_some_and(|s| s.count() > 0) => {
                let sketch = self.sketch.as_ref()?;
                let estimate = sketch.value_at_rank(percentile_index(q, sketch.count() as usize) as u64)?;
                // The exact extremes bound the estimate.
                let lo = self.min_f.unwrap_or(f64::NEG_INFINITY);
                let hi = self.max_f.unwrap_or(f64::INFINITY);
                Some(FieldValue::F64(estimate.clamp(lo.min(hi), hi.max(lo))))
            }
            AggregateFn::Percentile(q) if !self.values.is_empty() => {
                let mut sorted = self.values.clone();
                sorted.sort_by(f64::total_cmp);
                Some(FieldValue::F64(sorted[percentile_index(q, sorted.len())]))
            }
            _ => None,
        }
    }
}

/// Nearest rank: the smallest value with at least `q` percent of values at or below it.
pub(crate) fn percentile_index(q: f64, n: usize) -> usize {
    let rank = (q / 100.0 * n as f64).ceil() as usize;
    rank.clamp(1, n) - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_of_floats_adds_up_as_value_by_value() {
        use rand::{Rng, SeedableRng};
        let seed = crate::test_seed();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for round in 0..200 {
            let values: Vec<f64> = (0..rng.random_range(0..300))
                .map(|_| match rng.random_range(0..40) {
                    0 => f64::NAN,
                    1 => f64::INFINITY,
                    2 => f64::NEG_INFINITY,
                    _ => rng.random_range(-1e6..1e6),
                })
                .collect();
            let (mut by_value, mut by_run) = (Acc::default(), Acc::default());
            // A value before the run, so the run continues a sum and a minimum.
            if round % 2 == 0 {
                by_value.add_f64(0.5, (0, 0, 0), Needs::default());
                by_run.add_f64(0.5, (0, 0, 0), Needs::default());
            }
            for &v in &values {
                by_value.add_f64(v, (0, 0, 0), Needs::default());
            }
            by_run.add_f64_run(&values);
            // Debug output shows every field, with floats to the last bit.
            assert_eq!(
                format!("{by_run:?}"),
                format!("{by_value:?}"),
                "seed {seed}, round {round}: {values:?}"
            );
        }
    }

    #[test]
    fn merged_accumulators_equal_one_pass() {
        let needs = Needs {
            first_last: true,
            stddev: true,
            percentile: true,
        };
        let values: Vec<f64> = (0..100).map(|i| ((i * 37) % 101) as f64 / 4.0).collect();
        let mut whole = Acc::default();
        let (mut a, mut b) = (Acc::default(), Acc::default());
        for (i, &v) in values.iter().enumerate() {
            whole.add_f64(v, (i as i64, 0, 0), needs);
            if i % 3 == 0 { &mut a } else { &mut b }.add_f64(v, (i as i64, 0, 0), needs);
        }
        a.merge(b);
        for f in [
            AggregateFn::Count,
            AggregateFn::Sum,
            AggregateFn::Min,
            AggregateFn::Max,
            AggregateFn::First,
            AggregateFn::Last,
            AggregateFn::Percentile(90.0),
        ] {
            assert_eq!(a.result(f), whole.result(f), "{f:?}");
        }
        let (Some(FieldValue::F64(x)), Some(FieldValue::F64(y))) = (a.result(AggregateFn::Stddev), whole.result(AggregateFn::Stddev))
        else {
            panic!()
        };
        assert!((x - y).abs() < 1e-9);
        assert_eq!(percentile_index(50.0, 4), 1);
        assert_eq!(percentile_index(0.0, 4), 0);
        assert_eq!(percentile_index(100.0, 4), 3);
    }

    #[test]
    fn integers_stay_integers_and_nan_is_skipped_by_min_max() {
        let needs = Needs::default();
        let mut acc = Acc::default();
        acc.add_i64(i64::MAX, (0, 0, 0), needs);
        acc.add_i64(-3, (1, 0, 0), needs);
        assert_eq!(acc.result(AggregateFn::Min), Some(FieldValue::I64(-3)));
        assert_eq!(acc.result(AggregateFn::Sum), Some(FieldValue::I64(i64::MAX - 3)));
        let mut acc = Acc::default();
        acc.add_f64(f64::NAN, (0, 0, 0), needs);
        acc.add_f64(2.0, (1, 0, 0), needs);
        assert_eq!(acc.result(AggregateFn::Max), Some(FieldValue::F64(2.0)));
        assert!(matches!(acc.result(AggregateFn::Sum), Some(FieldValue::F64(s)) if s.is_nan()));
        assert_eq!(Acc::default().result(AggregateFn::Mean), None);
        assert_eq!(Acc::default().result(AggregateFn::Count), Some(FieldValue::I64(0)));
    }
}
