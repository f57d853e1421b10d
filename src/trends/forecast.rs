//! Forecasts with prediction intervals, and when a threshold will be reached.
//!
//! Models are exponential smoothing in error-correction form (Hyndman, Koehler, Ord &
//! Snyder, *Forecasting with Exponential Smoothing*, 2008): simple (level only), damped
//! trend (Gardner & McKenzie 1985), and additive Holt-Winters with the detected season
//! and a damped trend. Each is fitted by a grid search over its smoothing weights on its
//! mean absolute error at 1, h/4, h/2 and h steps ahead along the history (not the
//! one-step error alone, which favours a level that chases the last value); the model is
//! chosen by its error on the last horizon of the history (fitted on what came before). Intervals are empirical: the chosen model is
//! replayed from up to [`ORIGINS`] origins in the history and its errors at each step
//! ahead, scaled by their spread at that step, give the interval's quantiles (Hyndman &
//! Athanasopoulos, *FPP3* §5.5, errors of the model itself rather than a normal law).

use super::patterns::{MAX_GRID_CELLS, Period, find_periods, grid_step, theil_sen};
use super::stats::{Grid, nearest_rank};
use crate::error::{Error, Result};
use serde::Serialize;

/// Most forecast steps one request may ask for.
pub const MAX_HORIZON_STEPS: usize = 100_000;
/// Rolling origins the intervals are estimated from.
const ORIGINS: usize = 40;

/// One forecast step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastPoint {
    /// Start of the grid cell forecast.
    pub time: i64,
    /// Point forecast.
    pub forecast: f64,
    /// 80% prediction interval.
    pub lower_80: f64,
    /// 80% prediction interval.
    pub upper_80: f64,
    /// 95% prediction interval.
    pub lower_95: f64,
    /// 95% prediction interval.
    pub upper_95: f64,
}

/// When the series reaches a threshold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThresholdEta {
    /// The threshold asked about.
    pub threshold: f64,
    /// `rising` when the last value is below the threshold (the question is when it
    /// rises to it), `falling` when it is at or above it (when it falls to it).
    pub direction: String,
    /// First forecast step whose point forecast crosses it, within the horizon.
    pub at: Option<i64>,
    /// First step whose 95% interval reaches it, within the horizon: the earliest
    /// plausible time.
    pub earliest: Option<i64>,
    /// Where the current trend (Theil-Sen over the history) crosses it, at any distance;
    /// `None` when the trend runs away from it or is flat.
    pub at_current_trend: Option<i64>,
}

/// A forecast of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// The model chosen: `simple`, `damped-trend` or `holt-winters`.
    pub model: String,
    /// Season length in grid cells (Holt-Winters only).
    pub season_samples: Option<u64>,
    /// Grid step, in nanoseconds: the spacing of the forecast points.
    pub step_nanos: i64,
    /// Smoothing weights: level, trend, season, damping.
    pub alpha: f64,
    /// Trend weight (0 without a trend).
    pub beta: f64,
    /// Season weight (0 without a season).
    pub gamma: f64,
    /// Trend damping (1 without a trend).
    pub phi: f64,
    /// The forecast points.
    pub points: Vec<ForecastPoint>,
    /// Present when a threshold was asked about.
    pub threshold: Option<ThresholdEta>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Simple,
    DampedTrend,
    HoltWinters,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Simple => "simple",
            Kind::DampedTrend => "damped-trend",
            Kind::HoltWinters => "holt-winters",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Weights {
    alpha: f64,
    beta: f64,
    gamma: f64,
    phi: f64,
}

/// State of an exponential smoothing model after some observations.
#[derive(Debug, Clone)]
struct State {
    level: f64,
    trend: f64,
    season: Vec<f64>,
    /// Observations consumed: the next one has season index `t % m`.
    t: usize,
}

#[derive(Debug, Clone)]
struct Model {
    kind: Kind,
    m: usize,
    w: Weights,
}

impl Model {
    fn init(&self, y: &[f64]) -> State {
        let m = self.m;
        if self.kind == Kind::HoltWinters && y.len() >= 2 * m {
            let first = y[..m].iter().sum::<f64>() / m as f64;
            let second = y[m..2 * m].iter().sum::<f64>() / m as f64;
            State {
                level: first,
                trend: (second - first) / m as f64,
                season: y[..m].iter().map(|v| v - first).collect(),
                t: 0,
            }
        } else {
            State {
                level: y.first().copied().unwrap_or(0.0),
                trend: if self.kind == Kind::DampedTrend && y.len() > 1 {
                    y[1] - y[0]
                } else {
                    0.0
                },
                season: Vec::new(),
                t: 0,
            }
        }
    }

    fn season_at(&self, s: &State, t: usize) -> f64 {
        if s.season.is_empty() { 0.0 } else { s.season[t % s.season.len()] }
    }

    fn one_step(&self, s: &State) -> f64 {
        s.level + self.w.phi * s.trend + self.season_at(s, s.t)
    }

    /// Consumes `y`, returning the one-step error.
    fn update(&self, s: &mut State, y: f64) -> f64 {
        let Weights { alpha, beta, gamma, phi } = self.w;
        let e = y - self.one_step(s);
        let damped = phi * s.trend;
        s.level += damped + alpha * e;
        s.trend = damped + beta * e;
        if !s.season.is_empty() {
            let i = s.t % s.season.len();
            s.season[i] += gamma * e;
        }
        s.t += 1;
        e
    }

    /// Forecasts `h` steps ahead (h >= 1) from a state.
    fn ahead(&self, s: &State, h: usize) -> f64 {
        let phi = self.w.phi;
        let damp_sum = if (phi - 1.0).abs() < 1e-12 {
            h as f64
        } else {
            phi * (1.0 - phi.powi(h as i32)) / (1.0 - phi)
        };
        s.level + damp_sum * s.trend + self.season_at(s, s.t + h - 1)
    }

    /// Mean absolute error of forecasts made along `y` at 1, h/4, h/2 and h steps ahead,
    /// from origins every h/4 steps: the weights are chosen for the horizon asked, not
    /// for the next step only (a level that chases the last value forecasts one step
    /// well and a day badly).
    fn horizon_loss(&self, y: &[f64], horizon: usize) -> f64 {
        let mut s = self.init(y);
        let warm = if self.kind == Kind::HoltWinters { self.m } else { 1 };
        let stride = (horizon / 4).max(1);
        let steps = [1, (horizon / 4).max(1), (horizon / 2).max(1), horizon.max(1)];
        let (mut total, mut count) = (0.0, 0usize);
        for (i, &v) in y.iter().enumerate() {
            self.update(&mut s, v);
            if i >= warm && (i - warm) % stride == 0 {
                for &h in &steps {
                    if let Some(&actual) = y.get(i + h) {
                        total += (actual - self.ahead(&s, h)).abs();
                        count += 1;
                    }
                }
            }
        }
        if count == 0 {
            return self.sse(y);
        }
        let loss = total / count as f64;
        if loss.is_finite() { loss } else { f64::INFINITY }
    }

    fn sse(&self, y: &[f64]) -> f64 {
        let mut s = self.init(y);
        let skip = if self.kind == Kind::HoltWinters { self.m } else { 1 };
        let mut sse = 0.0;
        for (i, &v) in y.iter().enumerate() {
            let e = self.update(&mut s, v);
            if i >= skip {
                sse += e * e;
            }
        }
        if sse.is_finite() { sse } else { f64::INFINITY }
    }
}

/// Fits a model kind's weights to `y` by grid search on [`Model::horizon_loss`].
fn fit(kind: Kind, m: usize, y: &[f64], horizon: usize) -> Model {
    let alphas = [0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.9];
    let (betas, gammas, phis): (&[f64], &[f64], &[f64]) = match kind {
        Kind::Simple => (&[0.0], &[0.0], &[1.0]),
        Kind::DampedTrend => (&[0.0, 0.005, 0.02, 0.08], &[0.0], &[0.8, 0.9, 0.98, 1.0]),
        Kind::HoltWinters => (&[0.0, 0.005, 0.02], &[0.01, 0.05, 0.15, 0.3], &[0.9, 0.98]),
    };
    let mut best = Model {
        kind,
        m,
        w: Weights {
            alpha: 0.2,
            beta: 0.0,
            gamma: 0.0,
            phi: 1.0,
        },
    };
    let mut best_sse = f64::INFINITY;
    for &alpha in &alphas {
        for &beta in betas {
            for &gamma in gammas {
                for &phi in phis {
                    let model = Model {
                        kind,
                        m,
                        w: Weights { alpha, beta, gamma, phi },
                    };
                    let sse = model.horizon_loss(y, horizon);
                    if sse < best_sse {
                        best_sse = sse;
                        best = model;
                    }
                }
            }
        }
    }
    best
}

/// Forecasts `horizon` nanoseconds past the last of the time-sorted `points`. With a
/// `threshold`, also says when the series reaches it. `None` with fewer than 3 finite
/// points.
///
/// A horizon of more than [`MAX_HORIZON_STEPS`] grid steps is refused, naming the step.
pub fn forecast(points: &[(i64, f64)], horizon_nanos: i64, threshold: Option<f64>) -> Result<Option<Forecast>> {
    forecast_with_periods(points, horizon_nanos, threshold, None)
}

/// [`forecast`], given the periods [`super::patterns::analyze`] found on the same points
/// (the same grid), so they are not sought twice.
pub(crate) fn forecast_with_periods(
    points: &[(i64, f64)],
    horizon_nanos: i64,
    threshold: Option<f64>,
    known_periods: Option<&[Period]>,
) -> Result<Option<Forecast>> {
    let finite: Vec<(i64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
    if finite.len() < 3 {
        return Ok(None);
    }
    let Some(step) = grid_step(&finite) else { return Ok(None) };
    let Some(grid) = Grid::resample(&finite, step, MAX_GRID_CELLS) else {
        return Ok(None);
    };
    let horizon = usize::try_from(horizon_nanos.max(step) / step).unwrap_or(usize::MAX).max(1);
    if horizon > MAX_HORIZON_STEPS {
        return Err(Error::invalid(format!(
            "a horizon of {horizon} steps of {} s is over {MAX_HORIZON_STEPS}: shorten the horizon, or pass every for coarser steps",
            step as f64 / 1e9
        )));
    }
    let periods = match known_periods {
        Some(known) => known.to_vec(),
        None => find_periods(&grid),
    };
    Ok(Some(forecast_grid(&grid, &periods, horizon, threshold, &finite)))
}

/// Forecast on a regular grid, given its periods. Exposed to the benchmarks through
/// [`forecast_values`].
fn forecast_grid(grid: &Grid, periods: &[Period], horizon: usize, threshold: Option<f64>, points: &[(i64, f64)]) -> Forecast {
    let y = &grid.values;
    let model = choose_model(y, periods, horizon);
    let (points_out, _) = run(&model, y, horizon, grid.time(y.len() - 1), grid.step);
    let eta = threshold.map(|t| threshold_eta(t, &points_out, points));
    Forecast {
        model: model.kind.name().to_string(),
        season_samples: (model.kind == Kind::HoltWinters).then_some(model.m as u64),
        step_nanos: grid.step,
        alpha: model.w.alpha,
        beta: model.w.beta,
        gamma: model.w.gamma,
        phi: model.w.phi,
        points: points_out,
        threshold: eta,
    }
}

/// Forecast of a regular series `y` for `horizon` steps, with a known season (`None` to
/// detect one): the point forecasts and the 80% intervals. For the accuracy benchmarks.
pub fn forecast_values(y: &[f64], season: Option<usize>, horizon: usize) -> Vec<(f64, f64, f64)> {
    if y.len() < 3 || horizon == 0 {
        return Vec::new();
    }
    let grid = Grid {
        start: 0,
        step: 1,
        values: y.to_vec(),
        observed: y.len(),
    };
    let periods = match season {
        Some(m) => vec![Period {
            samples: m as u64,
            nanos: m as i64,
            name: None,
            autocorrelation: 1.0,
            strength: 1.0,
        }],
        None => find_periods(&grid),
    };
    let model = choose_model(y, &periods, horizon);
    let (points, _) = run(&model, y, horizon, 0, 1);
    points.into_iter().map(|p| (p.forecast, p.lower_80, p.upper_80)).collect()
}

/// Picks the model kind with the smallest mean absolute error over the last `horizon`
/// cells (fitted on the cells before them), then refits it on everything.
fn choose_model(y: &[f64], periods: &[Period], horizon: usize) -> Model {
    let m = periods
        .iter()
        .map(|p| p.samples as usize)
        .find(|&m| m >= 2 && y.len() >= 3 * m)
        .unwrap_or(0);
    let mut kinds = vec![Kind::Simple, Kind::DampedTrend];
    if m > 0 {
        kinds.push(Kind::HoltWinters);
    }
    let holdout = horizon.min(y.len() / 4);
    let train = &y[..y.len() - holdout];
    let mut best_kind = Kind::Simple;
    let mut best_error = f64::INFINITY;
    if holdout >= 1 && train.len() >= 3 {
        for &kind in &kinds {
            if kind == Kind::HoltWinters && train.len() < 2 * m {
                continue;
            }
            let model = fit(kind, m, train, horizon);
            let mut s = model.init(train);
            for &v in train {
                model.update(&mut s, v);
            }
            let error: f64 = (1..=holdout)
                .map(|h| (y[train.len() + h - 1] - model.ahead(&s, h)).abs())
                .sum::<f64>()
                / holdout as f64;
            // Prefer the simpler model unless the richer one is clearly better.
            if error < best_error * 0.98 {
                best_error = error;
                best_kind = kind;
            }
        }
    } else if m > 0 {
        best_kind = Kind::HoltWinters;
    }
    fit(best_kind, m, y, horizon)
}

/// Runs the model over `y`, collecting errors from rolling origins, and forecasts the
/// horizon with empirical intervals. Returns the points and the number of origins used.
fn run(model: &Model, y: &[f64], horizon: usize, last_time: i64, step: i64) -> (Vec<ForecastPoint>, usize) {
    let n = y.len();
    let warm = if model.kind == Kind::HoltWinters { 2 * model.m } else { 10 }.min(n.saturating_sub(1));
    // Origins evenly spaced over the part of the history that leaves a full horizon after.
    let usable = n.saturating_sub(warm + 1);
    let count = ORIGINS.min(usable);
    let origins: Vec<usize> = (0..count).map(|k| n - 1 - (k + 1) * usable / (count + 1)).collect();
    let mut errors: Vec<Vec<f64>> = vec![Vec::new(); horizon];
    let mut s = model.init(y);
    for (i, &v) in y.iter().enumerate() {
        model.update(&mut s, v);
        if origins.contains(&i) {
            for h in 1..=horizon.min(n - 1 - i) {
                errors[h - 1].push(y[i + h] - model.ahead(&s, h));
            }
        }
    }
    // Spread of the errors at each step ahead: their root mean square, made non-decreasing
    // (uncertainty does not shrink with distance); steps without errors extend the last
    // spread with the square root of the distance.
    let mut spread = vec![f64::NAN; horizon];
    let mut last = (0usize, f64::NAN);
    for h in 0..horizon {
        let e = &errors[h];
        if e.len() >= 5 {
            let rms = (e.iter().map(|x| x * x).sum::<f64>() / e.len() as f64).sqrt();
            let rms = if last.1.is_finite() { rms.max(last.1) } else { rms };
            spread[h] = rms;
            last = (h, rms);
        } else if last.1.is_finite() {
            spread[h] = last.1 * (((h + 1) as f64) / ((last.0 + 1) as f64)).sqrt();
        }
    }
    let mut standardised: Vec<f64> = errors
        .iter()
        .zip(&spread)
        .flat_map(|(e, &sd)| e.iter().filter(move |_| sd > 0.0).map(move |x| x / sd))
        .collect();
    standardised.sort_by(f64::total_cmp);
    let quantile = |q: f64, normal: f64| {
        if standardised.len() >= 50 {
            nearest_rank(&standardised, q).unwrap_or(normal)
        } else {
            normal
        }
    };
    let (q10, q90, q025, q975) = (
        quantile(0.10, -1.2816),
        quantile(0.90, 1.2816),
        quantile(0.025, -1.96),
        quantile(0.975, 1.96),
    );
    // Without enough history for errors: the one-step residual spread, growing with the
    // square root of the distance.
    let fallback = {
        let mut t = model.init(y);
        let residuals: Vec<f64> = y.iter().map(|&v| model.update(&mut t, v)).skip(1).collect();
        (residuals.iter().map(|e| e * e).sum::<f64>() / residuals.len().max(1) as f64).sqrt()
    };
    let points = (1..=horizon)
        .map(|h| {
            let f = model.ahead(&s, h);
            let sd = if spread[h - 1].is_finite() {
                spread[h - 1]
            } else {
                fallback * (h as f64).sqrt()
            };
            ForecastPoint {
                time: last_time.saturating_add(step.saturating_mul(h as i64)),
                forecast: f,
                lower_80: f + q10 * sd,
                upper_80: f + q90 * sd,
                lower_95: f + q025 * sd,
                upper_95: f + q975 * sd,
            }
        })
        .collect();
    (points, count)
}

fn threshold_eta(threshold: f64, forecast: &[ForecastPoint], history: &[(i64, f64)]) -> ThresholdEta {
    let (last_time, last_value) = history.last().copied().unwrap_or((0, f64::NAN));
    let rising = last_value < threshold;
    let crosses = |v: f64| if rising { v >= threshold } else { v <= threshold };
    let at = forecast.iter().find(|p| crosses(p.forecast)).map(|p| p.time);
    let earliest = forecast
        .iter()
        .find(|p| crosses(if rising { p.upper_95 } else { p.lower_95 }))
        .map(|p| p.time);
    let at_current_trend = theil_sen(history).and_then(|trend| {
        let slope = trend.slope_per_day;
        let gap = threshold - trend.level_at_end;
        if slope == 0.0 || gap.signum() != slope.signum() {
            return None;
        }
        let days = gap / slope;
        let nanos = days * crate::time::NANOS_PER_DAY as f64;
        (nanos.is_finite() && nanos < i64::MAX as f64).then(|| last_time.saturating_add(nanos as i64))
    });
    ThresholdEta {
        threshold,
        direction: if rising { "rising" } else { "falling" }.to_string(),
        at,
        earliest,
        at_current_trend,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{NANOS_PER_DAY, NANOS_PER_SECOND};

    fn noise(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed % 10_000) as f64 / 10_000.0 - 0.5
    }

    #[test]
    fn a_seasonal_series_is_forecast_by_holt_winters_with_honest_intervals() {
        let seed0 = crate::test_seed();
        let mut seed = seed0 | 1;
        let step = 1_800 * NANOS_PER_SECOND;
        let value = |i: usize, seed: &mut u64| 100.0 + 20.0 * (std::f64::consts::TAU * (i % 48) as f64 / 48.0).sin() + 4.0 * noise(seed);
        let points: Vec<(i64, f64)> = (0..48 * 20).map(|i| (i as i64 * step, value(i, &mut seed))).collect();
        let f = forecast(&points, NANOS_PER_DAY, None).unwrap().unwrap();
        assert_eq!(
            (f.model.as_str(), f.season_samples, f.points.len()),
            ("holt-winters", Some(48), 48),
            "seed {seed0}"
        );
        assert_eq!(f.points[0].time, points.last().unwrap().0 + step);
        let future: Vec<f64> = (48 * 20..48 * 21).map(|i| value(i, &mut seed)).collect();
        let mae: f64 = f.points.iter().zip(&future).map(|(p, y)| (p.forecast - y).abs()).sum::<f64>() / 48.0;
        assert!(mae < 2.5, "seed {seed0}: mae {mae}");
        let inside = f
            .points
            .iter()
            .zip(&future)
            .filter(|(p, y)| p.lower_80 <= **y && **y <= p.upper_80)
            .count();
        assert!(inside >= 28, "seed {seed0}: {inside}/48 inside the 80% interval");
        for p in &f.points {
            assert!(
                p.lower_95 <= p.lower_80 && p.lower_80 <= p.forecast && p.forecast <= p.upper_80 && p.upper_80 <= p.upper_95,
                "{p:?}"
            );
        }
    }

    #[test]
    fn a_rising_disk_reaches_its_threshold_at_the_trend_and_in_the_horizon() {
        let step = 600 * NANOS_PER_SECOND;
        // 50% rising 1% a day, with no noise: 90% in 40 days.
        let points: Vec<(i64, f64)> = (0..144 * 10).map(|i| (i as i64 * step, 50.0 + i as f64 / 144.0)).collect();
        let last = points.last().unwrap().0;
        let f = forecast(&points, 60 * NANOS_PER_DAY, Some(90.0)).unwrap().unwrap();
        let eta = f.threshold.unwrap();
        assert_eq!(eta.direction, "rising");
        // The last value is 50 + 1439/144: 90 is 30.007 days away at one a day.
        let trend_days = (eta.at_current_trend.unwrap() - last) as f64 / NANOS_PER_DAY as f64;
        assert!((trend_days - (90.0 - (50.0 + 1439.0 / 144.0))).abs() < 0.01, "{trend_days}");
        let at_days = (eta.at.unwrap() - last) as f64 / NANOS_PER_DAY as f64;
        assert!((at_days - trend_days).abs() < 2.0, "{at_days} vs {trend_days}");
        assert!(eta.earliest.unwrap() <= eta.at.unwrap());
        // Falling away from the threshold: never at the current trend.
        let falling: Vec<(i64, f64)> = points.iter().map(|&(t, v)| (t, 100.0 - v)).collect();
        let eta = forecast(&falling, NANOS_PER_DAY, Some(90.0)).unwrap().unwrap().threshold.unwrap();
        assert_eq!((eta.direction.as_str(), eta.at_current_trend, eta.at), ("rising", None, None));
    }

    #[test]
    fn short_and_degenerate_series() {
        assert_eq!(forecast(&[(0, 1.0), (1, 2.0)], 10, None).unwrap(), None);
        let flat: Vec<(i64, f64)> = (0..100).map(|i| (i * 60 * NANOS_PER_SECOND, 5.0)).collect();
        let f = forecast(&flat, 3_600 * NANOS_PER_SECOND, Some(5.0)).unwrap().unwrap();
        assert!(
            f.points.iter().all(|p| p.forecast == 5.0 && p.lower_95 == 5.0 && p.upper_95 == 5.0),
            "{:?}",
            f.points[0]
        );
        let eta = f.threshold.unwrap();
        assert_eq!(
            (eta.direction.as_str(), eta.at, eta.at_current_trend),
            ("falling", Some(f.points[0].time), None)
        );
        let gappy = [
            (0, 1.0),
            (NANOS_PER_DAY * 30, 2.0),
            (NANOS_PER_DAY * 30 + 60, f64::NAN),
            (NANOS_PER_DAY * 31, 3.0),
        ];
        let f = forecast(&gappy, NANOS_PER_DAY, None).unwrap().unwrap();
        assert!(f.points.iter().all(|p| p.forecast.is_finite()));
        let err = forecast(&flat, 366 * NANOS_PER_DAY, None).unwrap_err().to_string();
        assert!(err.contains("527040 steps of 60 s is over 100000"), "{err}");
    }
}
