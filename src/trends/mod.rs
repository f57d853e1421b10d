//! Trend analysis: patterns by time of day and week, periods, trend and level shifts;
//! online anomaly scores; forecasts with intervals and threshold times; correlation
//! between series. [`crate::history::History::get_trends`] reads the series through the
//! query engine and hands them to [`analyze`]; the algorithms here see only
//! `(time, value)` points. docs/TRENDS.md describes each method and its measured accuracy.

pub mod anomaly;
pub mod correlate;
pub mod forecast;
pub mod output;
pub mod patterns;
pub(crate) mod stats;

pub use anomaly::{AnomalyDetector, AnomalyScore, DetectorOptions};
pub use correlate::{Correlation, Movement, PairCorrelation};
pub use forecast::{Forecast, ForecastPoint, ThresholdEta};
pub use output::{TrendPart, TrendTable};
pub use patterns::{ChangePoint, Patterns, Period, ProfileSlot, Trend};

use crate::error::{Error, Result};
use crate::query::QuerySpec;
use crate::time::{NANOS_PER_DAY, NANOS_PER_SECOND, parse_duration};
use serde::Serialize;
use std::collections::BTreeMap;

/// Which analyses a [`TrendQuery`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TrendParts {
    /// Profiles, periods, trend and change points.
    pub patterns: bool,
    /// Anomaly scores of every point.
    pub anomalies: bool,
    /// Forecast over the horizon.
    pub forecast: bool,
    /// Correlation between the selected series.
    pub correlation: bool,
}

impl TrendParts {
    /// Every part.
    pub const ALL: TrendParts = TrendParts {
        patterns: true,
        anomalies: true,
        forecast: true,
        correlation: true,
    };

    /// Reads a comma-separated list of `patterns`, `anomalies`, `forecast`, `correlation`
    /// (or `correlate`), or `all`.
    pub fn parse(text: &str) -> Result<TrendParts> {
        let mut parts = TrendParts::default();
        for name in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            match name {
                "all" => parts = TrendParts::ALL,
                "patterns" => parts.patterns = true,
                "anomalies" => parts.anomalies = true,
                "forecast" => parts.forecast = true,
                "correlation" | "correlate" => parts.correlation = true,
                other => {
                    return Err(Error::invalid(format!(
                        "unknown trend part {other:?} (known: patterns, anomalies, forecast, correlation, all)"
                    )));
                }
            }
        }
        if parts == TrendParts::default() {
            return Err(Error::invalid(
                "no trend part asked for (patterns, anomalies, forecast, correlation, all)",
            ));
        }
        Ok(parts)
    }
}

/// A trend analysis request: the series (as the query flags select them) and the parts.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendQuery {
    /// The series: `measurement`, `field` (one or more; each analysed apart), `where`,
    /// `from`, `to`, and optionally `group_by` and `every` to analyse the mean of each
    /// group per bucket instead of each stored series' points.
    pub selection: QuerySpec,
    /// The parts to compute.
    pub parts: TrendParts,
    /// Offset from UTC, in seconds, for the hour-of-day and day-of-week profiles.
    pub utc_offset_seconds: i32,
    /// Anomaly detector options (sensitivity).
    pub detector: DetectorOptions,
    /// Forecast horizon in nanoseconds (default one day).
    pub horizon_nanos: i64,
    /// With a forecast: when the series reaches this value.
    pub threshold: Option<f64>,
    /// Correlation: the largest lag tried, in buckets (default 12).
    pub max_lag: u32,
    /// Correlation: explain which series moved at this time; by default, at the highest
    /// scoring anomaly of the group when anomalies are computed.
    pub around: Option<i64>,
    /// Most points read per series before the series is read as bucket means instead
    /// (default 2,000,000).
    pub max_points: u64,
}

impl Default for TrendQuery {
    fn default() -> Self {
        TrendQuery {
            selection: QuerySpec::default(),
            parts: TrendParts::ALL,
            utc_offset_seconds: 0,
            detector: DetectorOptions::default(),
            horizon_nanos: NANOS_PER_DAY,
            threshold: None,
            max_lag: 12,
            around: None,
            max_points: 2_000_000,
        }
    }
}

/// Series a correlation may compare (pairs grow with the square).
pub const MAX_CORRELATED_SERIES: usize = 200;
/// Value pairs a correlation may compare: pairs of series × lags × buckets.
pub const MAX_CORRELATION_WORK: u128 = 1_000_000_000;

impl TrendQuery {
    /// Applies one text parameter of the trend form (the CLI flags and the route's query
    /// string): `parts`, `utc_offset` (`+05:30`, `-8`, or seconds), `sensitivity`,
    /// `horizon` (`1d`), `threshold`, `max_lag`, `around` (a time). Returns false for a
    /// name that is not one of these (a selection parameter, for [`QuerySpec`]).
    pub fn set_param(&mut self, name: &str, value: &str, now: i64) -> Result<bool> {
        let bad = |why: String| Error::invalid(format!("parameter {name}: {why}"));
        match name {
            "parts" | "part" => self.parts = TrendParts::parse(value)?,
            "utc_offset" | "utc-offset" => self.utc_offset_seconds = parse_utc_offset(value).map_err(bad)?,
            "sensitivity" => {
                let s: f64 = value.trim().parse().map_err(|_| bad(format!("{value:?} is not a number")))?;
                if !(0.0..=1.0).contains(&s) {
                    return Err(bad(format!("{s} is outside 0..=1")));
                }
                self.detector.sensitivity = s;
            }
            "horizon" => {
                let d = parse_duration(value)?;
                let nanos = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
                if nanos <= 0 || nanos > 366 * NANOS_PER_DAY {
                    return Err(bad(format!("{value:?} is outside (0, 366d]")));
                }
                self.horizon_nanos = nanos;
            }
            "threshold" => {
                let t: f64 = value.trim().parse().map_err(|_| bad(format!("{value:?} is not a number")))?;
                if !t.is_finite() {
                    return Err(bad(format!("{value:?} is not finite")));
                }
                self.threshold = Some(t);
            }
            "max_lag" | "max-lag" => {
                let l: u32 = value.trim().parse().map_err(|_| bad(format!("{value:?} is not a whole number")))?;
                if l > 10_000 {
                    return Err(bad(format!("{l} is over 10000 buckets")));
                }
                self.max_lag = l;
            }
            "around" => self.around = Some(crate::time::parse_time(value, now)?),
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// The selection parameters a trend request takes (the rest of [`QuerySpec`]'s, such as
/// `agg` or `limit`, do not apply: trends read points or bucket means themselves).
const SELECTION_PARAMS: [&str; 10] = [
    "measurement",
    "field",
    "fields",
    "where",
    "filter",
    "kind",
    "from",
    "to",
    "group_by",
    "every",
];

impl TrendQuery {
    /// Reads URL query parameters (percent-decoded): the selection (`measurement`,
    /// `field`, `where`, `filter`, `kind`, `from`, `to`, `group_by`, `every`) and the
    /// trend parameters of [`TrendQuery::set_param`]. An unknown name is an error that
    /// lists the known ones.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>, now: i64) -> Result<TrendQuery> {
        let mut query = TrendQuery::default();
        let mut selection = Vec::new();
        for (name, value) in pairs {
            if query.set_param(name, value, now)? {
                continue;
            }
            let canonical = if name == "group-by" { "group_by" } else { name };
            if !SELECTION_PARAMS.contains(&canonical) {
                return Err(Error::invalid(format!(
                    "unknown trend parameter {name:?} (known: {}, parts, utc_offset, sensitivity, horizon, threshold, \
                     max_lag, around)",
                    SELECTION_PARAMS.join(", ")
                )));
            }
            selection.push((canonical, value));
        }
        query.selection = QuerySpec::from_pairs(selection)?;
        Ok(query)
    }
}

/// `+05:30`, `-08:00`, `-8`, `UTC`/`Z`, or whole seconds.
fn parse_utc_offset(text: &str) -> std::result::Result<i32, String> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" || t.is_empty() {
        return Ok(0);
    }
    let seconds = if let Some((sign, rest)) = t.strip_prefix('+').map(|r| (1, r)).or_else(|| t.strip_prefix('-').map(|r| (-1, r))) {
        let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
        let h: i32 = h.parse().map_err(|_| format!("{text:?} is not an offset such as +05:30"))?;
        let m: i32 = m.parse().map_err(|_| format!("{text:?} is not an offset such as +05:30"))?;
        if m >= 60 {
            return Err(format!("{text:?}: minutes over 59"));
        }
        sign * (h * 3600 + m * 60)
    } else {
        t.parse::<i32>()
            .map_err(|_| format!("{text:?} is not an offset such as +05:30 or seconds"))?
    };
    if seconds.abs() > 18 * 3600 {
        return Err(format!("{text:?} is more than 18 hours from UTC"));
    }
    Ok(seconds)
}

/// One series handed to [`analyze`].
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPoints {
    /// Tags of the series (or of the group).
    pub tags: BTreeMap<String, String>,
    /// The field.
    pub field: String,
    /// `(time, value)` sorted by time; non-finite values are skipped by every analysis.
    pub points: Vec<(i64, f64)>,
}

impl SeriesPoints {
    /// `field{tag=value,...}`: how the series is named in tables and correlations.
    pub fn label(&self) -> String {
        if self.tags.is_empty() {
            return self.field.clone();
        }
        let tags: Vec<String> = self.tags.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{}{{{}}}", self.field, tags.join(","))
    }
}

/// A scored point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ScoredPoint {
    /// The point's time.
    pub time: i64,
    /// Its value.
    pub value: f64,
    /// Anomaly score in [0, 1].
    pub score: f64,
    /// `score >= threshold`.
    pub anomaly: bool,
}

/// Anomaly scores of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnomalyReport {
    /// The decision threshold (`1 - sensitivity`).
    pub threshold: f64,
    /// Points scored as anomalies.
    pub count: u64,
    /// Every point, in time order.
    pub points: Vec<ScoredPoint>,
}

/// The analyses of one series.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesTrend {
    /// `field{tags}`.
    pub label: String,
    /// The series' (or group's) tags.
    pub tags: BTreeMap<String, String>,
    /// The field.
    pub field: String,
    /// Points analysed.
    pub points: u64,
    /// First point's time.
    pub first: Option<i64>,
    /// Last point's time.
    pub last: Option<i64>,
    /// When asked for.
    pub patterns: Option<Patterns>,
    /// When asked for.
    pub anomalies: Option<AnomalyReport>,
    /// When asked for and there are at least 3 points.
    pub forecast: Option<Forecast>,
}

/// The answer to a [`TrendQuery`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TrendAnalysis {
    /// Bucket width the points are means of, when the series were read as buckets
    /// (`every`, or automatically past `max_points`); `None` for stored points.
    pub every_nanos: Option<i64>,
    /// One entry per series and field.
    pub series: Vec<SeriesTrend>,
    /// When asked for.
    pub correlation: Option<Correlation>,
}

/// Keys of [`TrendAnalysis`]'s JSON that hold times in nanoseconds.
const TIME_KEYS: [&str; 7] = ["time", "first", "last", "around", "at", "earliest", "at_current_trend"];

impl TrendAnalysis {
    /// The analysis as JSON: times as RFC 3339 strings (or integer nanoseconds with
    /// `rfc3339` false); with `all_points` false, only the anomalous points of each
    /// anomaly report (its `count` still counts them, `scored` says how many were scored).
    pub fn to_json(&self, rfc3339: bool, all_points: bool) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(series) = value.get_mut("series").and_then(serde_json::Value::as_array_mut) {
            for (json, trend) in series.iter_mut().zip(&self.series) {
                if let (Some(report), Some(anomalies)) = (json.get_mut("anomalies"), &trend.anomalies) {
                    report["scored"] = anomalies.points.len().into();
                    if !all_points && let Some(points) = report.get_mut("points").and_then(serde_json::Value::as_array_mut) {
                        points.retain(|p| p["anomaly"] == serde_json::Value::Bool(true));
                    }
                }
            }
        }
        if rfc3339 {
            times_to_text(&mut value);
        }
        value
    }
}

fn times_to_text(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if TIME_KEYS.contains(&key.as_str())
                    && let Some(ns) = v.as_i64()
                {
                    *v = crate::time::format_rfc3339(ns).into();
                } else {
                    times_to_text(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(times_to_text),
        _ => {}
    }
}

/// Runs the asked-for parts over already-read series.
pub fn analyze(series: Vec<SeriesPoints>, query: &TrendQuery, every_nanos: Option<i64>) -> Result<TrendAnalysis> {
    let parts = query.parts;
    if parts.correlation && series.len() > MAX_CORRELATED_SERIES {
        return Err(Error::invalid(format!(
            "correlation of {} series asked for; at most {MAX_CORRELATED_SERIES} (narrow the selection with where, or group_by)",
            series.len()
        )));
    }
    let mut out = Vec::with_capacity(series.len());
    let mut strongest: Option<(f64, i64)> = None;
    for s in &series {
        let anomalies = parts.anomalies.then(|| {
            let report = score_points(&s.points, query.detector);
            for p in report.points.iter().filter(|p| p.anomaly) {
                if strongest.is_none_or(|(score, _)| p.score > score) {
                    strongest = Some((p.score, p.time));
                }
            }
            report
        });
        let found = parts.patterns.then(|| patterns::analyze(&s.points, query.utc_offset_seconds));
        out.push(SeriesTrend {
            label: s.label(),
            tags: s.tags.clone(),
            field: s.field.clone(),
            points: s.points.len() as u64,
            first: s.points.first().map(|p| p.0),
            last: s.points.last().map(|p| p.0),
            forecast: if parts.forecast {
                // The periods patterns found on the same grid, when computed: the
                // autocorrelation is the costly half of both.
                let periods = found.as_ref().map(|p| p.periods.as_slice());
                forecast::forecast_with_periods(&s.points, query.horizon_nanos, query.threshold, periods)?
            } else {
                None
            },
            patterns: found,
            anomalies,
        });
    }
    let correlation = if parts.correlation {
        let bucket = every_nanos.unwrap_or_else(|| common_bucket(&series));
        let labelled: Vec<correlate::LabelledSeries> = series.iter().map(|s| (s.label(), bucket_means(&s.points, bucket))).collect();
        // Every pair at every lag reads both series once: bound the work.
        let buckets = labelled.iter().map(|l| l.1.len() as u128).max().unwrap_or(0);
        let pairs = (labelled.len() as u128 * labelled.len().saturating_sub(1) as u128) / 2;
        let work = pairs * (2 * u128::from(query.max_lag) + 1) * buckets;
        if work > MAX_CORRELATION_WORK {
            return Err(Error::invalid(format!(
                "correlating {pairs} pairs of up to {buckets} buckets at {} lags is over the {MAX_CORRELATION_WORK} \
                 comparisons one request may make: pass a coarser every, a smaller max_lag, or fewer series",
                2 * query.max_lag + 1
            )));
        }
        let around = query.around.or(strongest.map(|(_, t)| t - t.rem_euclid(bucket)));
        Some(correlate::correlate(&labelled, bucket, query.max_lag as usize, around))
    } else {
        None
    };
    Ok(TrendAnalysis {
        every_nanos,
        series: out,
        correlation,
    })
}

/// Scores time-sorted points with a fresh detector.
pub fn score_points(points: &[(i64, f64)], options: DetectorOptions) -> AnomalyReport {
    let mut detector = AnomalyDetector::new(options);
    let scored: Vec<ScoredPoint> = points
        .iter()
        .map(|&(time, value)| {
            let s = detector.score(time, value);
            ScoredPoint {
                time,
                value,
                score: s.score,
                anomaly: s.anomaly,
            }
        })
        .collect();
    AnomalyReport {
        threshold: options.threshold(),
        count: scored.iter().filter(|p| p.anomaly).count() as u64,
        points: scored,
    }
}

/// A bucket for aligning series read as stored points: the coarsest of their median
/// steps, at least a second.
fn common_bucket(series: &[SeriesPoints]) -> i64 {
    series
        .iter()
        .filter_map(|s| {
            let times: Vec<i64> = s.points.iter().map(|p| p.0).collect();
            stats::median_step(&times)
        })
        .max()
        .unwrap_or(NANOS_PER_SECOND)
        .max(NANOS_PER_SECOND)
}

/// Means of the finite values per bucket of `width`, keyed by bucket start.
fn bucket_means(points: &[(i64, f64)], width: i64) -> Vec<(i64, f64)> {
    let mut out: Vec<(i64, f64, u32)> = Vec::new();
    for &(t, v) in points.iter().filter(|p| p.1.is_finite()) {
        let start = t - t.rem_euclid(width);
        match out.last_mut() {
            Some(last) if last.0 == start => {
                last.1 += v;
                last.2 += 1;
            }
            _ => out.push((start, v, 1)),
        }
    }
    out.into_iter().map(|(t, sum, n)| (t, sum / f64::from(n))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_and_parameters_parse_with_named_errors() {
        assert_eq!(
            TrendParts::parse("patterns,forecast").unwrap(),
            TrendParts {
                patterns: true,
                forecast: true,
                ..TrendParts::default()
            }
        );
        assert_eq!(TrendParts::parse("all").unwrap(), TrendParts::ALL);
        assert!(
            TrendParts::parse("bogus")
                .unwrap_err()
                .to_string()
                .contains("unknown trend part \"bogus\"")
        );
        assert!(TrendParts::parse("").unwrap_err().to_string().contains("no trend part"));
        let mut q = TrendQuery::default();
        assert!(q.set_param("utc_offset", "+05:30", 0).unwrap());
        assert_eq!(q.utc_offset_seconds, 19_800);
        q.set_param("utc_offset", "-8", 0).unwrap();
        assert_eq!(q.utc_offset_seconds, -28_800);
        q.set_param("horizon", "2d", 0).unwrap();
        assert_eq!(q.horizon_nanos, 2 * NANOS_PER_DAY);
        assert!(!q.set_param("measurement", "cpu", 0).unwrap());
        let err = q.set_param("sensitivity", "1.5", 0).unwrap_err().to_string();
        assert!(err.contains("sensitivity") && err.contains("outside"), "{err}");
        assert!(q.set_param("utc_offset", "+19:00", 0).unwrap_err().to_string().contains("18 hours"));
        assert!(q.set_param("threshold", "NaN", 0).unwrap_err().to_string().contains("not finite"));
    }

    #[test]
    fn url_parameters_split_into_selection_and_trend_settings() {
        let q = TrendQuery::from_pairs(
            [
                ("measurement", "cpu"),
                ("field", "a,b"),
                ("where", "host=x"),
                ("parts", "forecast"),
                ("horizon", "2h"),
                ("group-by", "host"),
                ("every", "5m"),
            ],
            0,
        )
        .unwrap();
        assert_eq!(
            (
                q.selection.measurement.as_str(),
                q.selection.fields.len(),
                q.selection.group_by.clone()
            ),
            ("cpu", 2, vec!["host".to_string()])
        );
        assert_eq!(
            (q.parts, q.horizon_nanos),
            (
                TrendParts {
                    forecast: true,
                    ..TrendParts::default()
                },
                2 * 3_600 * NANOS_PER_SECOND
            )
        );
        let err = TrendQuery::from_pairs([("measurement", "cpu"), ("limit", "5")], 0)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("unknown trend parameter \"limit\"") && err.contains("sensitivity"),
            "{err}"
        );
    }

    #[test]
    fn json_has_text_times_and_only_anomalous_points_unless_asked() {
        let series = vec![SeriesPoints {
            tags: BTreeMap::new(),
            field: "v".into(),
            points: (0..400)
                .map(|i| (i * 60 * NANOS_PER_SECOND, if i == 300 { 1e6 } else { (i % 7) as f64 }))
                .collect(),
        }];
        let query = TrendQuery {
            parts: TrendParts::parse("anomalies").unwrap(),
            ..TrendQuery::default()
        };
        let analysis = analyze(series, &query, None).unwrap();
        let json = analysis.to_json(true, false);
        let report = &json["series"][0]["anomalies"];
        assert_eq!(report["scored"], 400);
        let points = report["points"].as_array().unwrap();
        assert_eq!(points.len() as u64, report["count"].as_u64().unwrap());
        assert_eq!(points[0]["time"], "1970-01-01T05:00:00Z");
        assert_eq!(json["series"][0]["first"], "1970-01-01T00:00:00Z");
        let all = analysis.to_json(false, true);
        assert_eq!(all["series"][0]["anomalies"]["points"].as_array().unwrap().len(), 400);
        assert_eq!(all["series"][0]["last"], 399 * 60 * NANOS_PER_SECOND);
    }

    #[test]
    fn analyze_runs_each_part_and_refuses_huge_correlations() {
        let series: Vec<SeriesPoints> = (0..3)
            .map(|h| SeriesPoints {
                tags: BTreeMap::from([("host".to_string(), format!("h{h}"))]),
                field: "usage".into(),
                points: (0..500).map(|i| (i * 60 * NANOS_PER_SECOND, (i % 17 + h) as f64)).collect(),
            })
            .collect();
        let only_patterns = TrendQuery {
            parts: TrendParts::parse("patterns").unwrap(),
            ..TrendQuery::default()
        };
        let a = analyze(series.clone(), &only_patterns, None).unwrap();
        assert_eq!(a.series.len(), 3);
        assert_eq!(a.series[1].label, "usage{host=h1}");
        assert!(
            a.series
                .iter()
                .all(|s| s.patterns.is_some() && s.anomalies.is_none() && s.forecast.is_none())
        );
        assert!(a.correlation.is_none());
        let all = analyze(series.clone(), &TrendQuery::default(), None).unwrap();
        let correlation = all.correlation.unwrap();
        assert_eq!((correlation.pairs.len(), correlation.bucket_nanos), (3, 60 * NANOS_PER_SECOND));
        assert_eq!(all.series[0].anomalies.as_ref().unwrap().points.len(), 500);
        let many: Vec<SeriesPoints> = (0..MAX_CORRELATED_SERIES + 1).map(|_| series[0].clone()).collect();
        let err = analyze(many, &TrendQuery::default(), None).unwrap_err().to_string();
        assert!(err.contains("at most 200"), "{err}");
        let long: Vec<SeriesPoints> = (0..20)
            .map(|h| SeriesPoints {
                tags: BTreeMap::from([("host".to_string(), format!("h{h}"))]),
                field: "usage".into(),
                points: (0..200_000).map(|i| (i * NANOS_PER_SECOND, (i % 17) as f64)).collect(),
            })
            .collect();
        let wide = TrendQuery {
            parts: TrendParts::parse("correlation").unwrap(),
            max_lag: 10_000,
            ..TrendQuery::default()
        };
        let err = analyze(long, &wide, None).unwrap_err().to_string();
        assert!(err.contains("190 pairs of up to 200000 buckets at 20001 lags"), "{err}");
    }
}
