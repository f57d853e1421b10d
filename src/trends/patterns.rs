//! Patterns of one series: time-of-day and day-of-week profiles, dominant periods, the
//! trend, and the points where the level shifts.

use super::stats::{Grid, mean_var, median, median_step, nearest_rank};
use crate::time::{NANOS_PER_DAY, NANOS_PER_HOUR, NANOS_PER_SECOND};
use serde::Serialize;

/// Summary of the points that fall in one slot of a profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileSlot {
    /// Hour of the day (0-23) or day of the week (0 = Monday .. 6 = Sunday), in the
    /// profile's offset.
    pub slot: u32,
    /// Points in the slot.
    pub count: u64,
    /// Their mean; `None` when the slot is empty.
    pub mean: Option<f64>,
    /// Their median (nearest rank, as the query engine's `p50`).
    pub p50: Option<f64>,
    /// Their 95th percentile (nearest rank, as `p95`).
    pub p95: Option<f64>,
}

/// A period found in the data.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Period {
    /// Length in samples of the regular grid the series was read on.
    pub samples: u64,
    /// Length in nanoseconds.
    pub nanos: i64,
    /// A name when it is a calendar period (`hour`, `day`, `week`), else `None`.
    pub name: Option<String>,
    /// Autocorrelation of the series at this lag.
    pub autocorrelation: f64,
    /// Share of the variance (after removing the trend) explained by the period's
    /// average shape, in [0, 1] (Wang, Smith & Hyndman's seasonal strength).
    pub strength: f64,
}

/// The series' trend.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// Theil-Sen slope, in value units per day.
    pub slope_per_day: f64,
    /// The trend line's value at the last point.
    pub level_at_end: f64,
    /// The slope as a share of the mean absolute level, per day (`None` at level 0).
    pub relative_slope_per_day: Option<f64>,
}

/// A point where the level shifts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangePoint {
    /// Start of the first grid cell of the new level.
    pub time: i64,
    /// Mean of the (deseasonalised) segment before.
    pub level_before: f64,
    /// Mean of the segment after.
    pub level_after: f64,
}

/// All patterns of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Patterns {
    /// Offset from UTC, in seconds, that the profiles' hours and days are in.
    pub utc_offset_seconds: i32,
    /// 24 slots, one per hour of the day.
    pub hour_of_day: Vec<ProfileSlot>,
    /// 7 slots, Monday first.
    pub day_of_week: Vec<ProfileSlot>,
    /// Step of the regular grid periods and change points are computed on.
    pub grid_step_nanos: i64,
    /// Dominant periods, strongest first.
    pub periods: Vec<Period>,
    /// `None` with fewer than two points.
    pub trend: Option<Trend>,
    /// Level shifts, oldest first.
    pub change_points: Vec<ChangePoint>,
}

/// Cells of the grid periods are sought on: enough for two weeks of 10-minute data.
pub(crate) const MAX_GRID_CELLS: usize = 20_000;
/// Points the trend's pairwise slopes are taken over (cell means).
const TREND_CELLS: usize = 1_000;
/// Cells change points are sought on.
const CHANGE_CELLS: usize = 2_000;
/// An autocorrelation peak below this is not a period.
const MIN_AUTOCORRELATION: f64 = 0.3;

/// Computes every pattern of time-sorted points.
pub fn analyze(points: &[(i64, f64)], utc_offset_seconds: i32) -> Patterns {
    let finite: Vec<(i64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
    let offset = i64::from(utc_offset_seconds) * NANOS_PER_SECOND;
    let (hour_of_day, day_of_week) = profiles(&finite, offset);
    let step = grid_step(&finite);
    let grid = step.and_then(|s| Grid::resample(&finite, s, MAX_GRID_CELLS));
    let periods = grid.as_ref().map(find_periods).unwrap_or_default();
    let trend = theil_sen(&finite);
    let change_points = grid.as_ref().map(|g| change_points(g, periods.first())).unwrap_or_default();
    Patterns {
        utc_offset_seconds,
        hour_of_day,
        day_of_week,
        grid_step_nanos: grid.as_ref().map_or(0, |g| g.step),
        periods,
        trend,
        change_points,
    }
}

/// Hour-of-day and day-of-week profiles, exact over every point.
pub(crate) fn profiles(points: &[(i64, f64)], offset_ns: i64) -> (Vec<ProfileSlot>, Vec<ProfileSlot>) {
    let mut hours: Vec<Vec<f64>> = vec![Vec::new(); 24];
    let mut days: Vec<Vec<f64>> = vec![Vec::new(); 7];
    for &(t, v) in points {
        let local = t.saturating_add(offset_ns);
        let day = local.div_euclid(NANOS_PER_DAY);
        hours[(local.rem_euclid(NANOS_PER_DAY) / NANOS_PER_HOUR) as usize].push(v);
        // 1970-01-01 was a Thursday: day 0 is slot 3 with Monday as 0.
        days[(day + 3).rem_euclid(7) as usize].push(v);
    }
    let slot = |(i, mut values): (usize, Vec<f64>)| {
        values.sort_by(f64::total_cmp);
        let count = values.len() as u64;
        ProfileSlot {
            slot: i as u32,
            count,
            mean: (count > 0).then(|| values.iter().sum::<f64>() / count as f64),
            p50: nearest_rank(&values, 0.5),
            p95: nearest_rank(&values, 0.95),
        }
    };
    (
        hours.into_iter().enumerate().map(slot).collect(),
        days.into_iter().enumerate().map(slot).collect(),
    )
}

/// The grid step: the median sampling step, coarsened so that the range fits
/// [`MAX_GRID_CELLS`] cells (a week of minute data is read at ten minutes).
pub(crate) fn grid_step(points: &[(i64, f64)]) -> Option<i64> {
    let times: Vec<i64> = points.iter().map(|p| p.0).collect();
    let step = median_step(&times)?;
    let span = i128::from(*times.iter().max()?) - i128::from(*times.iter().min()?);
    let needed = i64::try_from(span / MAX_GRID_CELLS as i128 + 1).unwrap_or(i64::MAX);
    let mut step = step.max(needed).max(1);
    // Round to a divisor of a day when near one, so daily lags are whole cells.
    for nice in [
        1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200, 86_400,
    ] {
        let nice = nice * NANOS_PER_SECOND;
        if nice >= step {
            if nice - step <= step / 2 {
                step = nice;
            }
            break;
        }
    }
    Some(step)
}

fn autocorrelation(values: &[f64], max_lag: usize) -> Vec<f64> {
    let (mean, var) = mean_var(values);
    let n = values.len();
    let mut acf = vec![0.0; max_lag + 1];
    if var.is_nan() || var <= 0.0 {
        return acf;
    }
    let centred: Vec<f64> = values.iter().map(|v| v - mean).collect();
    for (lag, slot) in acf.iter_mut().enumerate() {
        let s: f64 = centred[..n - lag].iter().zip(&centred[lag..]).map(|(a, b)| a * b).sum();
        // Divided by the pairs summed, not by n: long lags are not penalised for having
        // fewer pairs, so a weekly peak can be compared with a daily one.
        *slot = s / ((n - lag) as f64 * var);
    }
    acf
}

/// Periods: local maxima of the autocorrelation above [`MIN_AUTOCORRELATION`], with at
/// least two full cycles in the data, a lag that is a multiple of a shorter accepted
/// period kept only when it correlates clearly better (a weekly rhythm over a daily one);
/// then the calendar name when the length is one. After AUTOPERIOD (Vlachos, Yu &
/// Castelli, SDM 2005), with the autocorrelation doing both the search and the check.
pub(crate) fn find_periods(grid: &Grid) -> Vec<Period> {
    let n = grid.values.len();
    if n < 8 {
        return Vec::new();
    }
    // At least three cycles: with fewer, a period's average shape is mostly the data. And
    // no longer than the cells that hold data: lags over interpolated gaps say nothing.
    let max_lag = (n / 3).min(grid.observed);
    let acf = autocorrelation(&grid.values, max_lag);
    let mut peaks: Vec<usize> = (2..max_lag)
        .filter(|&l| acf[l] >= MIN_AUTOCORRELATION && acf[l] > acf[l - 1] && acf[l] >= acf[l + 1])
        .collect();
    // A peak must also stand above the trough before it, or a slow trend passes for one.
    peaks.retain(|&l| {
        let trough = acf[1..l].iter().copied().fold(f64::INFINITY, f64::min);
        acf[l] - trough >= 0.1
    });
    // A peak a cell or 2% away from an hour, a day or a week is read as that calendar
    // period when the calendar lag correlates almost as well: sampling noise moves the
    // maximum by a cell.
    let calendar: Vec<usize> = [NANOS_PER_HOUR, NANOS_PER_DAY, 7 * NANOS_PER_DAY]
        .into_iter()
        .filter(|len| len % grid.step == 0)
        .map(|len| (len / grid.step) as usize)
        .filter(|&c| c >= 2 && c < max_lag)
        .collect();
    for lag in &mut peaks {
        if let Some(&c) = calendar.iter().find(|&&c| c.abs_diff(*lag) as f64 <= (0.02 * *lag as f64).max(1.0))
            && acf[c] >= acf[*lag] - 0.02
        {
            *lag = c;
        }
    }
    peaks.dedup();
    let mut accepted: Vec<usize> = Vec::new();
    for &lag in &peaks {
        // Compared with the best of the accepted periods it is a multiple of: four weeks
        // must beat one week, not just one day.
        let divisor_best = accepted
            .iter()
            .filter(|&&p| is_multiple(lag, p))
            .map(|&p| acf[p])
            .fold(f64::NEG_INFINITY, f64::max);
        if acf[lag] < divisor_best + 0.05 {
            continue;
        }
        // A peak within a few cells of a better neighbouring one is its shoulder.
        if accepted.iter().any(|&p| p.abs_diff(lag) <= lag / 20) {
            continue;
        }
        accepted.push(lag);
    }
    let mut periods: Vec<Period> = accepted
        .into_iter()
        .map(|lag| Period {
            samples: lag as u64,
            nanos: lag as i64 * grid.step,
            name: calendar_name(lag as i64 * grid.step),
            autocorrelation: acf[lag],
            strength: seasonal_strength(&grid.values, lag),
        })
        .filter(|p| p.strength > 0.1)
        .collect();
    periods.sort_by(|a, b| b.strength.total_cmp(&a.strength).then(a.samples.cmp(&b.samples)));
    periods.truncate(3);
    periods
}

/// True when `lag` is within a cell or 2% of a whole multiple (≥ 2) of `base`.
fn is_multiple(lag: usize, base: usize) -> bool {
    if base == 0 || (lag as f64) < 1.5 * base as f64 {
        return false;
    }
    let k = (lag as f64 / base as f64).round();
    let off = (lag as f64 - k * base as f64).abs();
    off <= (0.02 * lag as f64).max(1.0)
}

fn calendar_name(nanos: i64) -> Option<String> {
    let near = |target: i64| (nanos - target).abs() * 50 <= target;
    [(NANOS_PER_HOUR, "hour"), (NANOS_PER_DAY, "day"), (7 * NANOS_PER_DAY, "week")]
        .into_iter()
        .find(|&(len, _)| near(len))
        .map(|(_, name)| name.to_string())
}

/// `max(0, 1 - Var(remainder) / Var(detrended))`, where the trend is a centred moving
/// average over one period and the seasonal shape the mean of each phase.
fn seasonal_strength(values: &[f64], period: usize) -> f64 {
    let detrended = detrend(values, period);
    let finite: Vec<(usize, f64)> = detrended.iter().copied().enumerate().filter(|(_, v)| v.is_finite()).collect();
    if finite.len() < 2 * period {
        return 0.0;
    }
    let mut sums = vec![0.0; period];
    let mut counts = vec![0u32; period];
    for &(i, v) in &finite {
        sums[i % period] += v;
        counts[i % period] += 1;
    }
    let shape: Vec<f64> = sums
        .iter()
        .zip(&counts)
        .map(|(s, &c)| if c > 0 { s / f64::from(c) } else { 0.0 })
        .collect();
    let d: Vec<f64> = finite.iter().map(|&(_, v)| v).collect();
    let r: Vec<f64> = finite.iter().map(|&(i, v)| v - shape[i % period]).collect();
    let (_, var_d) = mean_var(&d);
    let (_, var_r) = mean_var(&r);
    if var_d.is_nan() || var_d <= 0.0 {
        return 0.0;
    }
    (1.0 - var_r / var_d).clamp(0.0, 1.0)
}

/// The values minus a centred moving average of one period (NaN where the window does not
/// fit).
fn detrend(values: &[f64], period: usize) -> Vec<f64> {
    let n = values.len();
    let mut out = vec![f64::NAN; n];
    if period == 0 || n <= period {
        return out;
    }
    let mut prefix = vec![0.0; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] + values[i];
    }
    let half = period / 2;
    for (i, slot) in out.iter_mut().enumerate() {
        if i < half || i + period - half > n {
            continue;
        }
        let (a, b) = (i - half, i - half + period);
        *slot = values[i] - (prefix[b] - prefix[a]) / period as f64;
    }
    out
}

/// Theil-Sen slope (Sen 1968) over at most [`TREND_CELLS`] cell means, per day.
pub(crate) fn theil_sen(points: &[(i64, f64)]) -> Option<Trend> {
    let first = points.first()?.0;
    let last = points.last()?.0;
    if points.len() < 2 || last <= first {
        return None;
    }
    // Cell means of time and value: a cell's point sits at its points' mean time. Offsets
    // from the first point in i128: a span may exceed the i64 range.
    let cell = ((i128::from(last) - i128::from(first)) / TREND_CELLS as i128).max(1);
    let mut cells: Vec<(f64, f64)> = Vec::new();
    let mut current: Option<(i128, f64, f64, u32)> = None;
    for &(t, v) in points {
        let offset = i128::from(t) - i128::from(first);
        let index = offset / cell;
        let x = offset as f64 / NANOS_PER_DAY as f64;
        match &mut current {
            Some((i, sx, sv, n)) if *i == index => {
                *sx += x;
                *sv += v;
                *n += 1;
            }
            _ => {
                if let Some((_, sx, sv, n)) = current {
                    cells.push((sx / f64::from(n), sv / f64::from(n)));
                }
                current = Some((index, x, v, 1));
            }
        }
    }
    if let Some((_, sx, sv, n)) = current {
        cells.push((sx / f64::from(n), sv / f64::from(n)));
    }
    let mut slopes = Vec::with_capacity(cells.len() * cells.len() / 2);
    for (i, a) in cells.iter().enumerate() {
        for b in &cells[i + 1..] {
            if b.0 > a.0 {
                slopes.push((b.1 - a.1) / (b.0 - a.0));
            }
        }
    }
    let slope = median(&mut slopes)?;
    let mut intercepts: Vec<f64> = cells.iter().map(|&(x, y)| y - slope * x).collect();
    let intercept = median(&mut intercepts)?;
    let end_x = (i128::from(last) - i128::from(first)) as f64 / NANOS_PER_DAY as f64;
    let level_at_end = intercept + slope * end_x;
    let mean_abs = points.iter().map(|p| p.1.abs()).sum::<f64>() / points.len() as f64;
    Some(Trend {
        slope_per_day: slope,
        level_at_end,
        relative_slope_per_day: (mean_abs > 0.0).then(|| slope / mean_abs),
    })
}

/// Level shifts by PELT (Killick, Fearnhead & Eckley, JASA 2012) with a normal-mean cost,
/// on the series minus its strongest period's shape, averaged to at most
/// [`CHANGE_CELLS`] cells. Penalty `3 ln(n) σ²` (a BIC made stricter for serially
/// correlated data), σ from the median absolute first difference, and segments of at
/// least a period (or 1% of the range) so that a daily rhythm is not a string of shifts.
fn change_points(grid: &Grid, period: Option<&Period>) -> Vec<ChangePoint> {
    let mut values = grid.values.clone();
    let period_cells = period.map_or(0, |p| p.samples as usize);
    if period_cells >= 2 && values.len() >= 2 * period_cells {
        let mut sums = vec![0.0; period_cells];
        let mut counts = vec![0u32; period_cells];
        for (i, v) in values.iter().enumerate() {
            sums[i % period_cells] += v;
            counts[i % period_cells] += 1;
        }
        let (mean, _) = mean_var(&values);
        for (i, v) in values.iter_mut().enumerate() {
            *v -= sums[i % period_cells] / f64::from(counts[i % period_cells]) - mean;
        }
    }
    // Average down to at most CHANGE_CELLS cells.
    let factor = values.len().div_ceil(CHANGE_CELLS).max(1);
    let cells: Vec<f64> = values.chunks(factor).map(|c| c.iter().sum::<f64>() / c.len() as f64).collect();
    let n = cells.len();
    if n < 8 {
        return Vec::new();
    }
    let mut diffs: Vec<f64> = cells.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    let sigma = median(&mut diffs).unwrap_or(0.0) / std::f64::consts::SQRT_2 / 0.674_489_75;
    let (mean, var) = mean_var(&cells);
    let floor = 1e-9 * mean.abs().max(var.sqrt()).max(f64::MIN_POSITIVE);
    let sigma = sigma.max(floor);
    let penalty = 3.0 * (n as f64).ln() * sigma * sigma;
    let min_segment = (period_cells / factor).max(n / 100).max(3);
    let cuts = pelt(&cells, penalty, min_segment);
    let mut out = Vec::new();
    let mut start = 0;
    for (k, &cut) in cuts.iter().enumerate() {
        let end = cuts.get(k + 1).copied().unwrap_or(n);
        let before = segment_mean(&cells[start..cut]);
        let after = segment_mean(&cells[cut..end]);
        // A shift smaller than the noise of a cell is not reported.
        if (after - before).abs() >= 2.0 * sigma {
            out.push(ChangePoint {
                time: grid.time(cut * factor),
                level_before: before,
                level_after: after,
            });
        }
        start = cut;
    }
    out
}

fn segment_mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Optimal partition of `values` into segments of at least `min_segment`, minimising the
/// sum of squared deviations from each segment's mean plus `penalty` per segment, with
/// PELT's pruning. Returns the starts of every segment but the first.
pub(crate) fn pelt(values: &[f64], penalty: f64, min_segment: usize) -> Vec<usize> {
    let n = values.len();
    let min_segment = min_segment.max(1);
    if n < 2 * min_segment {
        return Vec::new();
    }
    let mut s1 = vec![0.0; n + 1];
    let mut s2 = vec![0.0; n + 1];
    for (i, v) in values.iter().enumerate() {
        s1[i + 1] = s1[i] + v;
        s2[i + 1] = s2[i] + v * v;
    }
    let cost = |a: usize, b: usize| {
        let len = (b - a) as f64;
        let sum = s1[b] - s1[a];
        (s2[b] - s2[a] - sum * sum / len).max(0.0)
    };
    let mut best = vec![f64::INFINITY; n + 1];
    let mut last = vec![0usize; n + 1];
    best[0] = -penalty;
    let mut candidates: Vec<usize> = vec![0];
    for end in min_segment..=n {
        let mut here = f64::INFINITY;
        let mut from = 0;
        for &c in &candidates {
            if end - c >= min_segment && best[c].is_finite() {
                let total = best[c] + cost(c, end) + penalty;
                if total < here {
                    here = total;
                    from = c;
                }
            }
        }
        best[end] = here;
        last[end] = from;
        // Pruning: a start whose cost already exceeds the best can never win later.
        candidates.retain(|&c| end - c < min_segment || !best[c].is_finite() || best[c] + cost(c, end) <= here);
        if end + 1 >= 2 * min_segment && end + 1 - min_segment <= n {
            candidates.push(end + 1 - min_segment);
        }
        candidates.sort_unstable();
        candidates.dedup();
    }
    let mut cuts = Vec::new();
    let mut at = n;
    while at > 0 {
        let from = last[at];
        if from > 0 {
            cuts.push(from);
        }
        if from >= at {
            break;
        }
        at = from;
    }
    cuts.reverse();
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brute_force_slot(points: &[(i64, f64)], offset: i64, hour: bool, slot: u32) -> ProfileSlot {
        let mut vals: Vec<f64> = points
            .iter()
            .filter(|&&(t, _)| {
                let local = t + offset;
                if hour {
                    ((local.rem_euclid(NANOS_PER_DAY)) / NANOS_PER_HOUR) as u32 == slot
                } else {
                    ((local.div_euclid(NANOS_PER_DAY) + 3).rem_euclid(7)) as u32 == slot
                }
            })
            .map(|p| p.1)
            .collect();
        vals.sort_by(f64::total_cmp);
        let n = vals.len();
        let rank = |q: f64| (n > 0).then(|| vals[((q * n as f64).ceil() as usize).clamp(1, n) - 1]);
        ProfileSlot {
            slot,
            count: n as u64,
            mean: (n > 0).then(|| vals.iter().sum::<f64>() / n as f64),
            p50: rank(0.5),
            p95: rank(0.95),
        }
    }

    #[test]
    fn profiles_equal_a_brute_force_computation() {
        let seed = crate::test_seed();
        let mut state = seed | 1;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        // 40 days of irregular points around 2024-02-26 (a Monday), some before 1970.
        let mut points = Vec::new();
        let mut t = 1_708_905_600 * NANOS_PER_SECOND - 3 * NANOS_PER_DAY;
        for _ in 0..20_000 {
            t += (next() % 400) as i64 * NANOS_PER_SECOND;
            points.push((t, (next() % 10_000) as f64 / 7.0));
        }
        points.push((-5 * NANOS_PER_DAY - 1, 1.5));
        points.sort_by_key(|p| p.0);
        for offset_s in [0i64, 5 * 3600 + 1800, -8 * 3600] {
            let offset = offset_s * NANOS_PER_SECOND;
            let (hours, days) = profiles(&points, offset);
            for slot in 0..24 {
                assert_eq!(
                    hours[slot as usize],
                    brute_force_slot(&points, offset, true, slot),
                    "seed {seed} hour {slot}"
                );
            }
            for slot in 0..7 {
                assert_eq!(
                    days[slot as usize],
                    brute_force_slot(&points, offset, false, slot),
                    "seed {seed} day {slot}"
                );
            }
        }
        // 2024-02-26T00:30Z is a Monday, hour 0.
        let (h, d) = profiles(&[(1_708_907_400 * NANOS_PER_SECOND, 1.0)], 0);
        assert_eq!((h[0].count, d[0].count), (1, 1));
    }

    #[test]
    fn daily_and_weekly_periods_are_found_in_half_hourly_data() {
        let step = 1_800 * NANOS_PER_SECOND;
        let points: Vec<(i64, f64)> = (0..48 * 7 * 8)
            .map(|i| {
                let day = (i / 48) % 7;
                let daily = (std::f64::consts::TAU * (i % 48) as f64 / 48.0).sin() * 10.0;
                let weekend = if day >= 5 { -6.0 } else { 0.0 };
                (i as i64 * step, 50.0 + daily + weekend + ((i * 7919) % 13) as f64 * 0.1)
            })
            .collect();
        let patterns = analyze(&points, 0);
        let lags: Vec<u64> = patterns.periods.iter().map(|p| p.samples).collect();
        assert!(lags.contains(&48), "{lags:?}");
        assert!(lags.contains(&336), "{lags:?}");
        assert_eq!(
            patterns
                .periods
                .iter()
                .find(|p| p.samples == 48)
                .and_then(|p| p.name.clone())
                .as_deref(),
            Some("day")
        );
        assert!(patterns.change_points.is_empty(), "{:?}", patterns.change_points);
    }

    #[test]
    fn a_level_shift_is_one_change_point_and_the_slope_is_per_day() {
        let step = 60 * NANOS_PER_SECOND;
        let points: Vec<(i64, f64)> = (0..3_000)
            .map(|i| (i as i64 * step, if i < 2_000 { 10.0 } else { 30.0 } + ((i * 31) % 7) as f64 * 0.01))
            .collect();
        let patterns = analyze(&points, 0);
        assert_eq!(patterns.change_points.len(), 1, "{:?}", patterns.change_points);
        let cp = &patterns.change_points[0];
        assert!((cp.time - 2_000 * step).abs() <= 10 * step, "{cp:?}");
        assert!(
            (cp.level_before - 10.03).abs() < 0.1 && (cp.level_after - 30.03).abs() < 0.1,
            "{cp:?}"
        );

        let ramp: Vec<(i64, f64)> = (0..2_000)
            .map(|i| (i as i64 * step, 5.0 + 2.0 * i as f64 * step as f64 / NANOS_PER_DAY as f64))
            .collect();
        let trend = theil_sen(&ramp).unwrap();
        assert!((trend.slope_per_day - 2.0).abs() < 1e-6, "{trend:?}");
    }

    #[test]
    fn degenerate_series_answer_without_panicking() {
        assert_eq!(analyze(&[], 0).trend, None);
        let one = analyze(&[(5, 1.0)], 0);
        assert_eq!((one.hour_of_day[0].count, one.periods.len(), one.change_points.len()), (1, 0, 0));
        let flat: Vec<(i64, f64)> = (0..5_000).map(|i| (i * NANOS_PER_SECOND * 300, 7.0)).collect();
        let p = analyze(&flat, 0);
        assert!(p.periods.is_empty() && p.change_points.is_empty());
        assert_eq!(p.trend.map(|t| t.slope_per_day), Some(0.0));
        let odd = [
            (0, f64::NAN),
            (NANOS_PER_DAY * 30, f64::INFINITY),
            (NANOS_PER_DAY * 60, 3.0),
            (NANOS_PER_DAY * 61, 4.0),
        ];
        let p = analyze(&odd, 0);
        assert_eq!(p.hour_of_day.iter().map(|s| s.count).sum::<u64>(), 2);
    }
}
