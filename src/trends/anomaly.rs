//! Online anomaly detection, one small state per series.
//!
//! Each point gets a score in [0, 1] from the points at or before it only. Written from the
//! papers it follows, not from any detector's code. Five channels each say "anomaly" or
//! not; the score is the largest of their scores (0.5 and up means an alert at the default
//! sensitivity), and one alert per incident is kept by a strict refractory stretch.
//!
//! - **Range** (the "spatial anomaly" of Ahmad et al., Neurocomputing 2017): a value beyond
//!   the running minimum or maximum by more than `range_tolerance` of the running range.
//!   Graded: 0.5 at the tolerance, rising with the excess.
//! - **Level**: the same test on an exponentially weighted mean of the values (EWMA
//!   control chart, Roberts, Technometrics 1959, with the running extremes of the EWMA as
//!   control limits): a sustained level shift that leaves every level seen so far.
//! - **Daily residual**: an additive Holt-Winters model (level plus one slot per part of
//!   the day, Brutlag's "aberrant behaviour" reading of its residual, LISA 2000); the EWMA
//!   of its residual beyond the extremes of that EWMA.
//! - **Weekly residual**: the same with a day-of-week by half-hour season (at most 336
//!   slots), active once three weeks of history exist, so that a weekly rhythm
//!   (weekends) is not an anomaly but a holiday is.
//! - **Surprise CUSUM**: three predictors (last value, EWMA, seasonal); the one with the
//!   smallest recent absolute error speaks, and its error over its typical error is the
//!   point's surprise. Page's one-sided CUSUM (Biometrika 1954) of the standardised
//!   log-surprise, with reference `cusum_drift` and decision interval `cusum_limit`,
//!   catches sustained runs of unusual points (bursts, new oscillation) that no single
//!   point reveals.
//!
//! All extremes forget slowly toward the running mean (`forget` per point), so a live
//! series that drifts for years keeps a meaningful range.
//!
//! Nothing depends on the series' future, length, or overall range: a store cannot know
//! them. Non-finite values score 0 and leave the state untouched.

use serde::{Deserialize, Serialize};

/// Nanoseconds in a day.
const DAY_NS: i64 = 86_400_000_000_000;

/// How an [`AnomalyDetector`] decides. One default for every series; only the
/// sensitivity is meant to be changed by users.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetectorOptions {
    /// In [0, 1]: a point is an anomaly when its score is at least `1 - sensitivity`.
    /// 0.5 by default; higher reports more.
    pub sensitivity: f64,
    /// Internal constants, tuned once on the shared NAB files.
    #[serde(default)]
    pub params: Params,
}

impl Default for DetectorOptions {
    fn default() -> Self {
        DetectorOptions {
            sensitivity: 0.5,
            params: Params::default(),
        }
    }
}

impl DetectorOptions {
    /// The score at and above which a point is an anomaly.
    pub fn threshold(&self) -> f64 {
        (1.0 - self.sensitivity).clamp(0.0, 1.0)
    }
}

/// The detector's constants. Public so that the tuning harness can vary them; the
/// defaults are the documented configuration.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Params {
    /// Points scored 0 while the state forms.
    pub warmup: u32,
    /// Weight of a new point in the exponentially weighted mean predictor.
    pub mean_alpha: f64,
    /// Weight of a new point in the seasonal model's level.
    pub level_alpha: f64,
    /// Weight of a new visit in a seasonal slot (daily and weekly).
    pub season_gamma: f64,
    /// Weight of a new error in each predictor's typical error (its choice and scale).
    pub error_alpha: f64,
    /// Errors larger than this many typical errors update the scale as if this large.
    pub error_clip: f64,
    /// Weight of a new value in the long-run mean and variance of the log-surprise.
    pub calibration_alpha: f64,
    /// CUSUM reference: standardised surprise above this accumulates.
    pub cusum_drift: f64,
    /// CUSUM decision interval, in standard deviations of the log-surprise.
    pub cusum_limit: f64,
    /// A value beyond the running range by this share of it alerts.
    pub range_tolerance: f64,
    /// Weight of a new value in the level channel's EWMA.
    pub level_smooth: f64,
    /// The level EWMA beyond its own running range by this share of it alerts.
    pub level_tolerance: f64,
    /// Weight of a new residual in the seasonal residuals' EWMAs.
    pub residual_smooth: f64,
    /// The daily residual EWMA beyond its running range by this share of it alerts.
    pub daily_tolerance: f64,
    /// The weekly residual EWMA beyond its running range by this share of it alerts.
    pub weekly_tolerance: f64,
    /// Weeks of history before the weekly channel speaks.
    pub weekly_after: f64,
    /// Per point, the running extremes move this share of the way toward the mean.
    pub forget: f64,
    /// Points after an alert during which no other point alerts.
    pub refractory: u32,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            warmup: 150,
            mean_alpha: 0.1,
            level_alpha: 0.05,
            season_gamma: 0.2,
            error_alpha: 0.01,
            error_clip: 6.0,
            calibration_alpha: 0.002,
            cusum_drift: 1.0,
            cusum_limit: 40.0,
            range_tolerance: 0.02,
            level_smooth: 0.05,
            level_tolerance: 0.01,
            residual_smooth: 0.1,
            daily_tolerance: 0.2,
            weekly_tolerance: 0.15,
            weekly_after: 3.0,
            forget: 3e-6,
            refractory: 130,
        }
    }
}

/// The score of one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnomalyScore {
    /// In [0, 1]; higher is more anomalous.
    pub score: f64,
    /// `score >= threshold` (refractory stretches already applied to the score).
    pub anomaly: bool,
}

/// Running extremes of a statistic, forgetting slowly toward a centre.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Extremes {
    max: f64,
    min: f64,
    n: u64,
}

impl Default for Extremes {
    fn default() -> Self {
        // Finite sentinels keep the state JSON-serialisable; `n == 0` marks them unset.
        Extremes { max: 0.0, min: 0.0, n: 0 }
    }
}

impl Extremes {
    /// How far `x` lies beyond the extremes, in units of their spread (0 inside or when
    /// the spread is still 0).
    fn excess(&self, x: f64) -> f64 {
        let range = self.max - self.min;
        if self.n == 0 || range.is_nan() || range <= 0.0 {
            return 0.0;
        }
        ((x - self.max).max(self.min - x) / range).max(0.0)
    }

    fn learn(&mut self, x: f64, forget: f64, centre: f64) {
        if self.n == 0 {
            self.max = x;
            self.min = x;
        }
        self.n += 1;
        self.max = self.max.max(x);
        self.min = self.min.min(x);
        if forget > 0.0 && self.max >= centre && self.min <= centre {
            self.max -= forget * (self.max - centre);
            self.min += forget * (centre - self.min);
        }
    }
}

/// Score of a channel whose statistic lies `excess` beyond its extremes (in units of their
/// range), alerting past `tolerance`: rising linearly to 0.5 at the tolerance (so a
/// sensitivity above 0.5 alerts on smaller excesses), then with the excess.
fn excess_score(excess: f64, tolerance: f64) -> f64 {
    if excess > tolerance {
        (0.5 + (excess - tolerance)).min(1.0)
    } else {
        0.5 * excess / tolerance
    }
}

/// Running mean and variance, exponentially weighted.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
struct EwStats {
    mean: f64,
    var: f64,
    n: u64,
}

impl EwStats {
    fn update(&mut self, x: f64, alpha: f64) {
        self.n += 1;
        if self.n == 1 {
            self.mean = x;
            self.var = 0.0;
            return;
        }
        // Early on, weigh points equally so the first few do not dominate for long.
        let a = alpha.max(1.0 / self.n as f64);
        let d = x - self.mean;
        self.mean += a * d;
        self.var = (1.0 - a) * (self.var + a * d * d);
    }
}

/// One predictor's forecast of the next point and its recent typical error.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
struct ErrorTrack {
    mean_abs: f64,
    n: u64,
}

impl ErrorTrack {
    fn update(&mut self, abs_error: f64, alpha: f64, clip: f64) {
        self.n += 1;
        let e = if self.n > 8 && self.mean_abs > 0.0 {
            abs_error.min(clip * self.mean_abs)
        } else {
            abs_error
        };
        let a = alpha.max(1.0 / self.n as f64);
        self.mean_abs += a * (e - self.mean_abs);
    }
}

/// Online anomaly detector for one series. Its state is about seven hundred numbers
/// (a daily season of at most 288 slots and a weekly one of at most 336) and can be saved
/// with serde and restored to resume exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyDetector {
    options: DetectorOptions,
    seen: u64,
    first_time: Option<i64>,
    last_time: Option<i64>,
    /// The first positive steps between points, until the sampling step is known.
    first_steps: Vec<i64>,
    /// Width of a daily seasonal slot once known (0: no season).
    slot_ns: Option<i64>,
    /// Width of a weekly seasonal slot (0: no weekly season).
    week_ns: i64,
    last_value: f64,
    mean: f64,
    level: f64,
    season: Vec<f64>,
    season_seen: Vec<bool>,
    week: Vec<f64>,
    week_seen: Vec<bool>,
    errors: [ErrorTrack; 3],
    /// Long-run moments of the log-surprise.
    surprise_stats: EwStats,
    cusum: f64,
    level_ewma: f64,
    daily_ewma: f64,
    weekly_ewma: f64,
    /// Extremes of the value, the level EWMA, and the daily and weekly residual EWMAs.
    extremes: [Extremes; 4],
    refractory_left: u32,
}

impl AnomalyDetector {
    /// A detector that has seen nothing.
    pub fn new(options: DetectorOptions) -> AnomalyDetector {
        AnomalyDetector {
            options,
            seen: 0,
            first_time: None,
            last_time: None,
            first_steps: Vec::new(),
            slot_ns: None,
            week_ns: 0,
            last_value: 0.0,
            mean: 0.0,
            level: 0.0,
            season: Vec::new(),
            season_seen: Vec::new(),
            week: Vec::new(),
            week_seen: Vec::new(),
            errors: [ErrorTrack::default(); 3],
            surprise_stats: EwStats::default(),
            cusum: 0.0,
            level_ewma: 0.0,
            daily_ewma: 0.0,
            weekly_ewma: 0.0,
            extremes: [Extremes::default(); 4],
            refractory_left: 0,
        }
    }

    /// The options it was made with.
    pub fn options(&self) -> &DetectorOptions {
        &self.options
    }

    /// Points scored so far (finite values only).
    pub fn seen(&self) -> u64 {
        self.seen
    }

    /// Scores the point `(time, value)` (nanoseconds since the epoch) and learns from it.
    pub fn score(&mut self, time: i64, value: f64) -> AnomalyScore {
        if !value.is_finite() {
            return AnomalyScore {
                score: 0.0,
                anomaly: false,
            };
        }
        let p = self.options.params;
        self.learn_step(time);
        let first = *self.first_time.get_or_insert(time);
        let slot = self.slot_of(time);
        let week_slot = self.week_slot_of(time);
        let speaking = self.seen >= u64::from(p.warmup);

        // Predictions made before seeing the value.
        let daily_ready = matches!(slot, Some(s) if self.season_seen[s]);
        let seasonal_prediction = match slot {
            Some(s) if self.season_seen[s] => self.level + self.season[s],
            _ => self.level,
        };
        let weeks = time.saturating_sub(first) as f64 / (7 * DAY_NS) as f64;
        let weekly_prediction = match week_slot {
            Some(w) if self.week_seen[w] && weeks >= p.weekly_after => Some(self.level + self.week[w]),
            _ => None,
        };
        let predictions = [self.last_value, self.mean, seasonal_prediction];

        // Surprise: the best predictor's error over its typical error.
        let mut surprise = 0.0;
        if self.seen > 0 {
            let best = (0..3)
                .filter(|&i| self.errors[i].n > 0)
                .min_by(|&a, &b| self.errors[a].mean_abs.total_cmp(&self.errors[b].mean_abs))
                .unwrap_or(0);
            let error = (value - predictions[best]).abs();
            let scale = self.errors[best].mean_abs;
            surprise = if scale > 0.0 {
                error / scale
            } else if error > 0.0 {
                // A series that never moved, moving.
                p.error_clip * 4.0
            } else {
                0.0
            };
            if !surprise.is_finite() {
                surprise = 0.0;
            }
            for (track, prediction) in self.errors.iter_mut().zip(predictions) {
                track.update((value - prediction).abs(), p.error_alpha, p.error_clip);
            }
        }
        let surprise = surprise.ln_1p();

        let mut score: f64 = 0.0;

        // Page's CUSUM of the standardised log-surprise.
        if self.surprise_stats.n > 2 {
            let sd = self.surprise_stats.var.sqrt();
            if sd > 0.0 {
                let z = (surprise - self.surprise_stats.mean) / sd;
                self.cusum = (self.cusum + z - p.cusum_drift).max(0.0);
                if speaking {
                    // 0.5 at the decision interval, proportionally less below it.
                    score = (0.5 * self.cusum / p.cusum_limit).min(0.5);
                }
                if self.cusum > p.cusum_limit {
                    self.cusum = 0.0;
                }
            }
        }
        self.surprise_stats.update(surprise, p.calibration_alpha);

        // Extremes of the value, its EWMA and the seasonal residuals' EWMAs.
        let level_ewma = if self.seen == 0 {
            value
        } else {
            self.level_ewma + p.level_smooth * (value - self.level_ewma)
        };
        let daily_ewma = daily_ready.then_some(self.daily_ewma + p.residual_smooth * (value - seasonal_prediction - self.daily_ewma));
        let weekly_ewma = weekly_prediction.map(|w| self.weekly_ewma + p.residual_smooth * (value - w - self.weekly_ewma));
        let channels = [
            (Some(value), p.range_tolerance, self.mean),
            (Some(level_ewma), p.level_tolerance, self.mean),
            (daily_ewma, p.daily_tolerance, 0.0),
            (weekly_ewma, p.weekly_tolerance, 0.0),
        ];
        for (k, (stat, tolerance, centre)) in channels.into_iter().enumerate() {
            let Some(x) = stat else { continue };
            let extremes = &mut self.extremes[k];
            let formed = k == 0 || extremes.n >= u64::from(p.warmup / 2);
            if speaking && formed && tolerance > 0.0 {
                score = score.max(excess_score(extremes.excess(x), tolerance));
            }
            extremes.learn(x, p.forget, centre);
        }
        self.level_ewma = level_ewma;
        if let Some(x) = daily_ewma {
            self.daily_ewma = x;
        }
        if let Some(x) = weekly_ewma {
            self.weekly_ewma = x;
        }

        // Learn the value.
        if self.seen == 0 {
            self.mean = value;
            self.level = value;
        } else {
            self.mean += p.mean_alpha * (value - self.mean);
        }
        if let Some(w) = week_slot {
            if self.week_seen[w] {
                self.week[w] += p.season_gamma * (value - self.level - self.week[w]);
            } else {
                self.week[w] = value - self.level;
                self.week_seen[w] = true;
            }
        }
        if let Some(s) = slot {
            if self.season_seen[s] {
                let season = self.season[s];
                self.level += p.level_alpha * (value - season - self.level);
                self.season[s] += p.season_gamma * (value - self.level - season);
            } else {
                self.season[s] = value - self.level;
                self.season_seen[s] = true;
            }
        } else {
            self.level += p.level_alpha * (value - self.level);
        }
        self.last_value = value;
        self.seen += 1;

        // Values near the float range can make a statistic NaN: that is no evidence.
        let score = if score.is_nan() { 0.0 } else { score.clamp(0.0, 1.0) };
        let threshold = self.options.threshold();
        let score = if self.refractory_left > 0 {
            self.refractory_left -= 1;
            score.min(below(threshold))
        } else {
            score
        };
        let anomaly = score >= threshold;
        if anomaly {
            self.refractory_left = p.refractory;
        }
        AnomalyScore { score, anomaly }
    }

    /// Learns the sampling step from the first steps between points, then sizes the
    /// seasonal slots: one per step, at most 288 a day (five minutes), at least 24.
    fn learn_step(&mut self, time: i64) {
        if let Some(last) = self.last_time
            && self.slot_ns.is_none()
            && time > last
        {
            self.first_steps.push(time.saturating_sub(last));
            if self.first_steps.len() >= 9 {
                self.first_steps.sort_unstable();
                let step = self.first_steps[self.first_steps.len() / 2];
                self.first_steps = Vec::new();
                let slots = (DAY_NS / step.max(1)).clamp(24, 288);
                if step <= DAY_NS / 24 {
                    self.slot_ns = Some(DAY_NS / slots);
                    self.season = vec![0.0; slots as usize];
                    self.season_seen = vec![false; slots as usize];
                    // Weekly: at most half-hour slots, so at most 336 of them.
                    let wslot = step.max(DAY_NS / 48);
                    let wslots = (7 * DAY_NS / wslot).max(1) as usize;
                    self.week_ns = wslot;
                    self.week = vec![0.0; wslots];
                    self.week_seen = vec![false; wslots];
                } else {
                    // Sampled more coarsely than hourly: no time-of-day season.
                    self.slot_ns = Some(0);
                }
            }
        }
        self.last_time = Some(time);
    }

    fn slot_of(&self, time: i64) -> Option<usize> {
        match self.slot_ns {
            Some(width) if width > 0 => Some((time.rem_euclid(DAY_NS) / width) as usize % self.season.len()),
            _ => None,
        }
    }

    fn week_slot_of(&self, time: i64) -> Option<usize> {
        if self.week_ns > 0 && !self.week.is_empty() {
            Some((time.rem_euclid(7 * DAY_NS) / self.week_ns) as usize % self.week.len())
        } else {
            None
        }
    }
}

/// The largest float below `x`, so a capped score stays under the threshold.
fn below(x: f64) -> f64 {
    if x <= 0.0 { 0.0 } else { f64::from_bits(x.to_bits() - 1) }
}
