//! Small statistics shared by the trend analyses: quantiles, ranks, correlation, and
//! resampling of irregular points onto a regular grid.

/// The `q`-quantile (0..=1) of `values` by the nearest-rank method on sorted data: the
/// query engine's own percentile rank, so profiles agree with `p95` queries. `values`
/// must be sorted ascending; `None` when empty.
pub(crate) fn nearest_rank(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[crate::query::percentile_index(q.clamp(0.0, 1.0) * 100.0, sorted.len())])
}

/// The median of `values` (mean of the two middle ones for an even count); reorders them.
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mid = n / 2;
    let (_, &mut upper, _) = values.select_nth_unstable_by(mid, f64::total_cmp);
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = values[..mid].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((lower + upper) / 2.0)
}

/// Mean and population variance.
pub(crate) fn mean_var(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    (mean, var)
}

/// Pearson's correlation of paired values; `None` with fewer than 3 pairs or when either
/// side is constant.
pub(crate) fn pearson(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let n = xs.len().min(ys.len());
    if n < 3 {
        return None;
    }
    let (mx, _) = mean_var(&xs[..n]);
    let (my, _) = mean_var(&ys[..n]);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (x, y) in xs[..n].iter().zip(&ys[..n]) {
        let (dx, dy) = (x - mx, y - my);
        sxy += dx * dy;
        sxx += dx * dx;
        syy += dy * dy;
    }
    if !(sxx > 0.0 && syy > 0.0) {
        return None;
    }
    Some((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Ranks (1-based), ties given their average rank.
pub(crate) fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            out[k] = rank;
        }
        i = j + 1;
    }
    out
}

/// Spearman's rank correlation: Pearson's on the ranks.
pub(crate) fn spearman(xs: &[f64], ys: &[f64]) -> Option<f64> {
    let n = xs.len().min(ys.len());
    pearson(&ranks(&xs[..n]), &ranks(&ys[..n]))
}

/// The median step between consecutive increasing times; `None` with fewer than two.
pub(crate) fn median_step(times: &[i64]) -> Option<i64> {
    let mut steps: Vec<f64> = times
        .windows(2)
        .filter(|w| w[1] > w[0])
        .map(|w| w[1].abs_diff(w[0]) as f64)
        .collect();
    median(&mut steps).map(|s| s as i64)
}

/// A series on a regular grid: `values[i]` is the mean of the points in
/// `[start + i*step, start + (i+1)*step)`, gaps filled by linear interpolation between the
/// neighbouring cells (flat at the ends).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grid {
    pub start: i64,
    pub step: i64,
    pub values: Vec<f64>,
    /// Cells that held at least one point.
    pub observed: usize,
}

impl Grid {
    /// Resamples time-sorted finite points at `step` (> 0); at most `max_cells` cells are
    /// kept, the newest. `None` when there are no points.
    pub(crate) fn resample(points: &[(i64, f64)], step: i64, max_cells: usize) -> Option<Grid> {
        let step = step.max(1);
        let first = points.iter().find(|p| p.1.is_finite())?.0;
        let last = points.iter().rev().find(|p| p.1.is_finite())?.0;
        let total = ((last as i128 - first as i128) / step as i128 + 1).min(usize::MAX as i128) as usize;
        let cells = total.min(max_cells.max(1));
        // In i128: a span near the whole i64 range must not overflow.
        let start = (first as i128 + (total - cells) as i128 * step as i128).clamp(i64::MIN as i128, i64::MAX as i128) as i64;
        let mut sums = vec![0.0; cells];
        let mut counts = vec![0u32; cells];
        for &(t, v) in points {
            if !v.is_finite() || t < start {
                continue;
            }
            let i = ((t as i128 - start as i128) / step as i128) as usize;
            if i < cells {
                sums[i] += v;
                counts[i] += 1;
            }
        }
        let observed = counts.iter().filter(|&&c| c > 0).count();
        if observed == 0 {
            return None;
        }
        let mut values: Vec<f64> = sums
            .iter()
            .zip(&counts)
            .map(|(s, &c)| if c > 0 { s / f64::from(c) } else { f64::NAN })
            .collect();
        fill_gaps(&mut values);
        Some(Grid {
            start,
            step,
            values,
            observed,
        })
    }

    /// The time of cell `i`.
    pub(crate) fn time(&self, i: usize) -> i64 {
        self.start.saturating_add((i as i64).saturating_mul(self.step))
    }
}

/// Replaces NaN runs by linear interpolation between their finite neighbours; runs at the
/// ends take the nearest finite value. A slice with no finite value is left alone.
pub(crate) fn fill_gaps(values: &mut [f64]) {
    let Some(first) = values.iter().position(|v| v.is_finite()) else {
        return;
    };
    let fill = values[first];
    values[..first].iter_mut().for_each(|v| *v = fill);
    let mut last = first;
    for i in first + 1..values.len() {
        if values[i].is_finite() {
            let gap = i - last;
            if gap > 1 {
                let (a, b) = (values[last], values[i]);
                for k in 1..gap {
                    values[last + k] = a + (b - a) * k as f64 / gap as f64;
                }
            }
            last = i;
        }
    }
    let fill = values[last];
    values[last + 1..].iter_mut().for_each(|v| *v = fill);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_matches_its_definition() {
        let sorted: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!(nearest_rank(&sorted, 0.5), Some(10.0));
        assert_eq!(nearest_rank(&sorted, 0.95), Some(19.0));
        assert_eq!(nearest_rank(&sorted, 0.0), Some(1.0));
        assert_eq!(nearest_rank(&sorted, 1.0), Some(20.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn ranks_average_ties_and_spearman_sees_monotone_as_one() {
        assert_eq!(ranks(&[10.0, 20.0, 20.0, 5.0]), vec![2.0, 3.5, 3.5, 1.0]);
        let xs: Vec<f64> = (0..50).map(f64::from).collect();
        let ys: Vec<f64> = xs.iter().map(|x| x.powi(3)).collect();
        assert!((spearman(&xs, &ys).unwrap() - 1.0).abs() < 1e-12);
        assert!(pearson(&xs, &ys).unwrap() < 0.95);
        assert_eq!(pearson(&xs, &[1.0; 50]), None);
    }

    #[test]
    fn resampling_averages_cells_and_interpolates_gaps() {
        let points = [(0, 1.0), (5, 3.0), (10, 5.0), (40, 11.0)];
        let grid = Grid::resample(&points, 10, 100).unwrap();
        assert_eq!(grid.values, vec![2.0, 5.0, 7.0, 9.0, 11.0]);
        assert_eq!(grid.observed, 3);
        let newest = Grid::resample(&points, 10, 2).unwrap();
        assert_eq!((newest.start, newest.values.clone()), (30, vec![11.0, 11.0]));
        assert_eq!(Grid::resample(&[(0, f64::NAN)], 10, 10), None);
    }
}
