//! Correlation between series on aligned time buckets: Pearson and Spearman, the lag at
//! which two series agree best, and which series moved together around a moment.

use super::stats::{mean_var, median, pearson, spearman};
use serde::Serialize;
use std::collections::BTreeMap;

/// How two series relate.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairCorrelation {
    /// The first series' label.
    pub a: String,
    /// The second series' label.
    pub b: String,
    /// Buckets where both have a value.
    pub buckets: u64,
    /// Pearson's r at lag 0; `None` when a side is constant or there are under 3 buckets.
    pub pearson: Option<f64>,
    /// Spearman's rank correlation at lag 0.
    pub spearman: Option<f64>,
    /// The lag, in buckets, with the largest |Pearson r| within the window: positive when
    /// `b` follows `a` (b at t + lag moves with a at t).
    pub best_lag: i64,
    /// The lag in nanoseconds.
    pub best_lag_nanos: i64,
    /// Pearson's r at the best lag.
    pub lag_coefficient: Option<f64>,
}

/// A series that moved around a moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Movement {
    /// The series' label.
    pub series: String,
    /// Mean over the window before the moment.
    pub before: f64,
    /// Mean over the window from the moment on.
    pub after: f64,
    /// The change in units of the series' usual bucket-to-bucket variation (robust); the
    /// sign says up or down.
    pub score: f64,
}

/// Correlations of a group of series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Correlation {
    /// Bucket width the series were aligned on.
    pub bucket_nanos: i64,
    /// Largest lag tried, in buckets, each way.
    pub max_lag: u64,
    /// Every pair, strongest |lag coefficient| first.
    pub pairs: Vec<PairCorrelation>,
    /// The moment movements are explained around, when there is one.
    pub around: Option<i64>,
    /// Series whose level changed at that moment by at least 3 units of their usual
    /// variation, largest change first.
    pub moved_together: Vec<Movement>,
}

/// A labelled series of `(bucket start, value)`.
pub type LabelledSeries = (String, Vec<(i64, f64)>);

/// Correlates every pair of `series` (values on common bucket starts) at lags up to
/// `max_lag` buckets, and explains the moment `around` when given.
pub fn correlate(series: &[LabelledSeries], bucket_nanos: i64, max_lag: usize, around: Option<i64>) -> Correlation {
    let times: Vec<i64> = {
        let mut all: Vec<i64> = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)).collect();
        all.sort_unstable();
        all.dedup();
        all
    };
    let index: BTreeMap<i64, usize> = times.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    let aligned: Vec<Vec<f64>> = series
        .iter()
        .map(|(_, points)| {
            let mut row = vec![f64::NAN; times.len()];
            for &(t, v) in points {
                if let Some(&i) = index.get(&t) {
                    row[i] = v;
                }
            }
            row
        })
        .collect();
    let mut pairs = Vec::new();
    for i in 0..series.len() {
        for j in i + 1..series.len() {
            pairs.push(pair(&series[i].0, &series[j].0, &aligned[i], &aligned[j], bucket_nanos, max_lag));
        }
    }
    pairs.sort_by(|x, y| {
        let key = |p: &PairCorrelation| p.lag_coefficient.map_or(-1.0, f64::abs);
        key(y).total_cmp(&key(x)).then_with(|| (&x.a, &x.b).cmp(&(&y.a, &y.b)))
    });
    let moved_together = around.map(|t| moved(series, &times, &aligned, t)).unwrap_or_default();
    Correlation {
        bucket_nanos,
        max_lag: max_lag as u64,
        pairs,
        around,
        moved_together,
    }
}

/// Values of `a` at t and `b` at t + lag where both are present.
fn lagged(a: &[f64], b: &[f64], lag: i64) -> (Vec<f64>, Vec<f64>) {
    let n = a.len() as i64;
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for t in 0.max(-lag)..n.min(n - lag) {
        let (x, y) = (a[t as usize], b[(t + lag) as usize]);
        if x.is_finite() && y.is_finite() {
            xs.push(x);
            ys.push(y);
        }
    }
    (xs, ys)
}

fn pair(a_name: &str, b_name: &str, a: &[f64], b: &[f64], bucket_nanos: i64, max_lag: usize) -> PairCorrelation {
    let (xs, ys) = lagged(a, b, 0);
    let mut best_lag = 0i64;
    let mut best = pearson(&xs, &ys);
    let max_lag = max_lag.min(a.len().saturating_sub(3)) as i64;
    for lag in (-max_lag..=max_lag).filter(|&l| l != 0) {
        let (lx, ly) = lagged(a, b, lag);
        let r = pearson(&lx, &ly);
        // Strictly better, or as good and shorter: lag 0 wins ties.
        let better = match (r, best) {
            (Some(r), Some(b)) => r.abs() > b.abs() + 1e-12 || (r.abs() >= b.abs() - 1e-12 && lag.abs() < best_lag.abs()),
            (Some(_), None) => true,
            _ => false,
        };
        if better {
            best = r;
            best_lag = lag;
        }
    }
    PairCorrelation {
        a: a_name.to_string(),
        b: b_name.to_string(),
        buckets: xs.len() as u64,
        pearson: pearson(&xs, &ys),
        spearman: spearman(&xs, &ys),
        best_lag,
        best_lag_nanos: best_lag.saturating_mul(bucket_nanos),
        lag_coefficient: best,
    }
}

/// Buckets compared each side of the moment.
const EXPLAIN_BUCKETS: usize = 6;

fn moved(series: &[LabelledSeries], times: &[i64], aligned: &[Vec<f64>], at: i64) -> Vec<Movement> {
    let split = times.partition_point(|&t| t < at);
    let mut out = Vec::new();
    for ((name, _), row) in series.iter().zip(aligned) {
        let before: Vec<f64> = row[..split]
            .iter()
            .rev()
            .copied()
            .filter(|v| v.is_finite())
            .take(EXPLAIN_BUCKETS)
            .collect();
        let after: Vec<f64> = row[split..]
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .take(EXPLAIN_BUCKETS)
            .collect();
        if before.len() < 2 || after.is_empty() {
            continue;
        }
        // The usual variation: median absolute bucket-to-bucket change before the moment.
        let history: Vec<f64> = row[..split].iter().copied().filter(|v| v.is_finite()).collect();
        let mut steps: Vec<f64> = history.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
        let (before_mean, _) = mean_var(&before);
        let (after_mean, _) = mean_var(&after);
        let usual = median(&mut steps).unwrap_or(0.0).max(1e-12 * before_mean.abs().max(1e-300));
        let score = (after_mean - before_mean) / usual;
        if score.abs() >= 3.0 {
            out.push(Movement {
                series: name.clone(),
                before: before_mean,
                after: after_mean,
                score,
            });
        }
    }
    out.sort_by(|x, y| y.score.abs().total_cmp(&x.score.abs()).then_with(|| x.series.cmp(&y.series)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seeded group: a driver (AR(1)), series that follow it with known lags and gains,
    /// and an unrelated one.
    #[test]
    fn known_lags_and_coefficients_are_recovered() {
        let seed0 = crate::test_seed();
        let mut seed = seed0 | 1;
        let mut uniform = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 1_000_000) as f64 / 1_000_000.0 - 0.5
        };
        let n = 2_000;
        let mut driver = vec![0.0; n];
        for t in 1..n {
            driver[t] = 0.3 * driver[t - 1] + uniform();
        }
        let noise_sd = 0.5 / 12f64.sqrt();
        let follow = |lag: usize, gain: f64, noise: f64, uniform: &mut dyn FnMut() -> f64| -> Vec<(i64, f64)> {
            (lag..n)
                .map(|t| (t as i64 * 60, gain * driver[t - lag] + noise * uniform()))
                .collect()
        };
        let a: Vec<(i64, f64)> = driver.iter().enumerate().map(|(t, &v)| (t as i64 * 60, v)).collect();
        let b = follow(3, 2.0, 0.2, &mut uniform);
        let c = follow(7, -1.0, 1.0, &mut uniform);
        let d: Vec<(i64, f64)> = (0..n).map(|t| (t as i64 * 60, uniform())).collect();
        let group = vec![
            ("a".to_string(), a),
            ("b".to_string(), b),
            ("c".to_string(), c),
            ("d".to_string(), d),
        ];
        let result = correlate(&group, 60, 10, None);
        let find = |x: &str, y: &str| result.pairs.iter().find(|p| p.a == x && p.b == y).unwrap().clone();
        let ab = find("a", "b");
        assert_eq!((ab.best_lag, ab.best_lag_nanos), (3, 180), "seed {seed0}: {ab:?}");
        // Expected r: gain·sd(driver) / sqrt(gain²·var(driver) + noise²·var(uniform)).
        let var_driver = noise_sd * noise_sd / (1.0 - 0.09);
        let expected =
            |gain: f64, noise: f64| gain * var_driver.sqrt() / (gain * gain * var_driver + noise * noise * noise_sd * noise_sd).sqrt();
        assert!(
            (ab.lag_coefficient.unwrap() - expected(2.0, 0.2)).abs() < 0.02,
            "seed {seed0}: {ab:?}"
        );
        let ac = find("a", "c");
        assert_eq!(ac.best_lag, 7, "seed {seed0}: {ac:?}");
        assert!(
            (ac.lag_coefficient.unwrap() - expected(-1.0, 1.0)).abs() < 0.05,
            "seed {seed0}: {ac:?}"
        );
        let bc = find("b", "c");
        assert_eq!(bc.best_lag, 4, "seed {seed0}: {bc:?}");
        let ad = find("a", "d");
        assert!(ad.lag_coefficient.unwrap().abs() < 0.15, "seed {seed0}: {ad:?}");
        assert_eq!(result.pairs.last().map(|p| p.b.as_str()), Some("d"));
        assert!(
            ab.pearson.unwrap().abs() < 0.2 && ab.spearman.unwrap().abs() < 0.2,
            "lag 0 is weak: {ab:?}"
        );
    }

    #[test]
    fn series_that_jump_together_are_named() {
        let mk = |jump: f64, wiggle: f64| -> Vec<(i64, f64)> {
            (0..100)
                .map(|t| (t * 10, if t >= 60 { jump } else { 0.0 } + wiggle * ((t * 37 % 11) as f64 - 5.0)))
                .collect()
        };
        let group = vec![
            ("up".to_string(), mk(50.0, 1.0)),
            ("down".to_string(), mk(-20.0, 0.5)),
            ("calm".to_string(), mk(0.0, 1.0)),
        ];
        let result = correlate(&group, 10, 2, Some(600));
        let names: Vec<&str> = result.moved_together.iter().map(|m| m.series.as_str()).collect();
        assert_eq!(names, ["up", "down"]);
        assert!(result.moved_together[0].score > 3.0 && result.moved_together[1].score < -3.0);
    }

    #[test]
    fn constant_and_tiny_series_have_no_coefficient() {
        let group = vec![
            ("a".to_string(), vec![(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)]),
            ("b".to_string(), vec![(0, 1.0), (1, 2.0)]),
        ];
        let result = correlate(&group, 1, 5, None);
        assert_eq!(result.pairs.len(), 1);
        assert_eq!((result.pairs[0].pearson, result.pairs[0].lag_coefficient), (None, None));
        assert_eq!(correlate(&[], 1, 5, Some(3)).pairs.len(), 0);
    }
}
