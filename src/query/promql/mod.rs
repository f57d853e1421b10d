//! PromQL over annals: the queries Grafana's Prometheus data source and `promtool` send,
//! parsed by the `promql-parser` crate and evaluated here over the read path.
//!
//! **Series.** Every numeric field of a metric series is one Prometheus series: its name is
//! the measurement when the field is `value` (what remote write stores) and
//! `<measurement>_<field>` otherwise (`cpu` with field `usage_user` is `cpu_usage_user`);
//! its other labels are the series' tags. A selector's `__name__` is resolved to the
//! measurements and fields it can mean, so `cpu_usage_user` reads the series of the
//! measurement `cpu` only; equality matchers on tags go to the tag index, the rest are
//! checked on the labels (a missing label is the empty string, as in Prometheus).
//!
//! **Time.** As in Prometheus 2.x: an instant selector takes the newest sample in the
//! lookback window `[t - 5m, t]`; a range selector `x[d]` the samples in `[t - d, t]`;
//! `offset` and `@` move `t`; a subquery's steps are aligned to multiples of its step.
//! Times are milliseconds since the epoch. annals stores no staleness markers (the
//! receiver drops them), so a series that ends is seen for one lookback window more.
//!
//! **Evaluated**: selectors with all four matchers, `offset` and `@`, subqueries, the
//! aggregations in [`AGGREGATIONS`] with `by`/`without`, arithmetic, comparison (with and
//! without `bool`) and set operators with `on`, `ignoring`, `group_left` and
//! `group_right`, and the functions in [`FUNCTIONS`]. Anything else is answered
//! [`Error::Unsupported`] naming it (`limitk`, fill modifiers, `or`
//! between matcher groups); PromQL's own rules broken by the data (many-to-many matching,
//! two results with the same labels) are [`Error::QueryExecution`]. Native histograms are
//! never stored, so there are none to read.

mod eval;
mod functions;
mod select;
#[cfg(feature = "forward")]
pub(crate) use select::metric_name;

pub use eval::{AGGREGATIONS, MAX_STEPS, PromOptions};
// What LogQL's metric queries reuse of the evaluator.
#[cfg(feature = "loki")]
pub(crate) use eval::{Evaluator, ExternalVectors, StepSeries, absent_labels_of};
pub use functions::SUPPORTED as FUNCTIONS;
#[cfg(feature = "loki")]
pub(crate) use select::selector_matchers;

use crate::error::{Error, Result};
use crate::read::ReadView;
use promql_parser::parser::Expr;
use std::sync::Arc;

/// The labels of a series, sorted by name, `__name__` included when it has one.
pub type Labels = Arc<Vec<(String, String)>>;

/// The label holding a series' metric name.
pub const METRIC_NAME: &str = "__name__";

/// One sample of an instant vector.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSample {
    /// Its series.
    pub labels: Labels,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
    /// The value.
    pub value: f64,
}

/// The samples of one series over time.
#[derive(Debug, Clone, PartialEq)]
pub struct PromSeries {
    /// Its series.
    pub labels: Labels,
    /// (milliseconds since the epoch, value), in time order.
    pub points: Vec<(i64, f64)>,
}

/// The answer of a PromQL query, as Prometheus' `resultType` names it.
#[derive(Debug, Clone, PartialEq)]
pub enum PromValue {
    /// `scalar`.
    Scalar {
        /// Milliseconds since the epoch.
        time_ms: i64,
        /// The value.
        value: f64,
    },
    /// `string`.
    String {
        /// Milliseconds since the epoch.
        time_ms: i64,
        /// The string.
        value: String,
    },
    /// `vector`: one sample per series, at the query's time.
    Vector(Vec<PromSample>),
    /// `matrix`: the answer of a range query, or of an instant query of a range selector.
    Matrix(Vec<PromSeries>),
}

impl PromValue {
    /// Prometheus' name of the value's type (`resultType`).
    pub fn result_type(&self) -> &'static str {
        match self {
            PromValue::Scalar { .. } => "scalar",
            PromValue::String { .. } => "string",
            PromValue::Vector(_) => "vector",
            PromValue::Matrix(_) => "matrix",
        }
    }
}

/// Parses a PromQL expression; a syntax error is [`Error::InvalidInput`] with the parser's
/// words.
pub fn parse(text: &str) -> Result<Expr> {
    if text.trim().is_empty() {
        return Err(Error::invalid("the query is empty"));
    }
    // The parser is another crate's: should it panic on some input, that input is refused
    // rather than taking the caller down (the promql fuzz target looks for such inputs).
    match std::panic::catch_unwind(|| promql_parser::parser::parse(text)) {
        Ok(parsed) => parsed.map_err(|e| Error::invalid(format!("invalid PromQL {text:?}: {e}"))),
        Err(_) => Err(Error::invalid(format!("invalid PromQL {text:?}: the parser could not read it"))),
    }
}

/// Evaluates `query` at one instant (`/api/v1/query`).
pub(crate) fn instant_query(view: &ReadView<'_>, query: &str, time_ms: i64, options: &PromOptions) -> Result<PromValue> {
    let expr = parse(query)?;
    eval::Evaluator::new(view, options, time_ms, time_ms).instant(&expr, time_ms)
}

/// Evaluates `query` at every step from `start_ms` to `end_ms` (`/api/v1/query_range`):
/// always a matrix (a scalar becomes one series without labels).
pub(crate) fn range_query(
    view: &ReadView<'_>,
    query: &str,
    start_ms: i64,
    end_ms: i64,
    step_ms: i64,
    options: &PromOptions,
) -> Result<PromValue> {
    let expr = parse(query)?;
    eval::Evaluator::new(view, options, start_ms, end_ms).range(&expr, start_ms, end_ms, step_ms)
}

/// The series that any of `selectors` matches with a sample in `[start_ms, end_ms]`
/// (`/api/v1/series`), sorted.
pub(crate) fn series(view: &ReadView<'_>, selectors: &[String], start_ms: i64, end_ms: i64) -> Result<Vec<Labels>> {
    select::series_matching(view, selectors, start_ms, end_ms)
}

/// Label names of the series `selectors` match (all series when empty), sorted.
pub(crate) fn label_names(view: &ReadView<'_>, selectors: &[String], start_ms: i64, end_ms: i64) -> Result<Vec<String>> {
    Ok(names_of(&select::series_or_all(view, selectors, start_ms, end_ms)?))
}

/// Values of one label over the series `selectors` match (all series when empty), sorted.
pub(crate) fn label_values(view: &ReadView<'_>, name: &str, selectors: &[String], start_ms: i64, end_ms: i64) -> Result<Vec<String>> {
    Ok(values_of(&select::series_or_all(view, selectors, start_ms, end_ms)?, name))
}

/// The label names of `sets`, sorted, without repeats.
pub(crate) fn names_of(sets: &[Labels]) -> Vec<String> {
    let mut names: Vec<String> = sets.iter().flat_map(|labels| labels.iter().map(|(name, _)| name.clone())).collect();
    names.sort();
    names.dedup();
    names
}

/// The values label `name` takes in `sets`, sorted, without repeats.
pub(crate) fn values_of(sets: &[Labels], name: &str) -> Vec<String> {
    let mut values: Vec<String> = sets.iter().filter_map(|labels| label(labels, name).map(str::to_string)).collect();
    values.sort();
    values.dedup();
    values
}

/// The value of label `name`, if the series has it.
pub(crate) fn label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .binary_search_by(|(n, _)| n.as_str().cmp(name))
        .ok()
        .map(|i| labels[i].1.as_str())
}

/// Formats a sample value as Prometheus does (Go's `strconv.FormatFloat(v, 'f', -1, 64)`):
/// `NaN`, `+Inf`, `-Inf`, and the shortest decimal that reads back exactly, without an
/// exponent.
pub fn format_value(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_string()
    } else if value.is_infinite() {
        if value > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else {
        // Rust's `Display` for f64 is the shortest round-trip decimal, never an exponent.
        format!("{value}")
    }
}

/// Formats a time in milliseconds as Prometheus' seconds with up to three decimals.
pub fn format_time(time_ms: i64) -> serde_json::Value {
    let seconds = time_ms.div_euclid(1000);
    let millis = time_ms.rem_euclid(1000);
    if millis == 0 {
        serde_json::Value::from(seconds)
    } else {
        serde_json::Value::from(seconds as f64 + millis as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Batch, FieldValue, SeriesKey, SeriesKind};
    use crate::{Engine, Options};

    const S: i64 = 1_000_000_000;
    /// 2026-01-01T00:00:00Z in milliseconds: a base time inside one month.
    const T0: i64 = 1_767_225_600_000;

    fn key(measurement: &str, tags: &[(&str, &str)]) -> SeriesKey {
        SeriesKey::new(SeriesKind::Metric, measurement, tags.iter().copied()).unwrap()
    }

    /// A store with:
    /// - counters `http_requests_total{job, instance}` sampled every 15 s for 20 minutes:
    ///   api/a grows 10 per sample, api/b 20 per sample, db/a 5 per sample;
    /// - `cpu` with fields `usage_user` (= minute index) and `usage_system` (= 2), host h1
    ///   and h2 (h2 doubles usage_user), every 60 s;
    /// - histogram buckets `latency_bucket{le}`: 0.1 → 10, 0.5 → 60, 1 → 90, +Inf → 100;
    /// - `gone{job="x"}` with samples only in the first two minutes.
    fn store() -> (tempfile::TempDir, Engine) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path(), Options::default()).unwrap();
        let mut batch = Batch::new();
        for (job, instance, per) in [("api", "a", 10.0), ("api", "b", 20.0), ("db", "a", 5.0)] {
            let k = key("http_requests_total", &[("job", job), ("instance", instance)]);
            for i in 0..=80 {
                batch
                    .add_row(&k, (T0 / 1000 + i * 15) * S, [("value", FieldValue::F64(per * i as f64))])
                    .unwrap();
            }
        }
        for (host, factor) in [("h1", 1.0), ("h2", 2.0)] {
            let k = key("cpu", &[("host", host)]);
            for i in 0..=20 {
                batch
                    .add_row(
                        &k,
                        (T0 / 1000 + i * 60) * S,
                        [
                            ("usage_user", FieldValue::F64(factor * i as f64)),
                            ("usage_system", FieldValue::I64(2)),
                        ],
                    )
                    .unwrap();
            }
        }
        for (le, count) in [("0.1", 10.0), ("0.5", 60.0), ("1", 90.0), ("+Inf", 100.0)] {
            let k = key("latency_bucket", &[("le", le)]);
            batch
                .add_row(&k, (T0 / 1000 + 600) * S, [("value", FieldValue::F64(count))])
                .unwrap();
        }
        let k = key("gone", &[("job", "x")]);
        for i in 0..=2 {
            batch
                .add_row(&k, (T0 / 1000 + i * 60) * S, [("value", FieldValue::F64(1.0))])
                .unwrap();
        }
        engine.write(&batch).unwrap();
        (dir, engine)
    }

    fn at(engine: &Engine, query: &str, seconds: i64) -> Result<PromValue> {
        engine
            .snapshot()
            .promql_instant(query, T0 + seconds * 1000, &PromOptions::default())
    }

    /// An instant vector as (labels as `k=v` joined by commas, value), sorted.
    fn vector(engine: &Engine, query: &str, seconds: i64) -> Vec<(String, f64)> {
        match at(engine, query, seconds).unwrap() {
            PromValue::Vector(samples) => samples
                .into_iter()
                .map(|s| {
                    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    assert_eq!(s.time_ms, T0 + seconds * 1000);
                    (labels.join(","), s.value)
                })
                .collect(),
            other => panic!("{query}: expected a vector, got {other:?}"),
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    /// Compares as sets: the order of an answer is checked where it matters.
    fn assert_vector(engine: &Engine, query: &str, seconds: i64, expected: &[(&str, f64)]) {
        let mut got = vector(engine, query, seconds);
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let mut expected: Vec<(String, f64)> = expected.iter().map(|(l, v)| (l.to_string(), *v)).collect();
        expected.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got.len(), expected.len(), "{query}: got {got:?}, expected {expected:?}");
        for (g, e) in got.iter().zip(&expected) {
            assert!(g.0 == e.0 && close(g.1, e.1), "{query}: got {got:?}, expected {expected:?}");
        }
    }

    #[test]
    fn fields_are_series_named_after_measurement_and_field() {
        let (_dir, engine) = store();
        assert_vector(
            &engine,
            "cpu_usage_user",
            600,
            &[("__name__=cpu_usage_user,host=h1", 10.0), ("__name__=cpu_usage_user,host=h2", 20.0)],
        );
        assert_vector(
            &engine,
            "cpu_usage_system{host=\"h2\"}",
            600,
            &[("__name__=cpu_usage_system,host=h2", 2.0)],
        );
        assert_vector(
            &engine,
            "{__name__=~\"cpu_.*\", host!=\"h2\"}",
            600,
            &[
                ("__name__=cpu_usage_system,host=h1", 2.0),
                ("__name__=cpu_usage_user,host=h1", 10.0),
            ],
        );
        // The field `value` is named after the measurement alone.
        assert_vector(
            &engine,
            "http_requests_total{job=\"db\"}",
            600,
            &[("__name__=http_requests_total,instance=a,job=db", 200.0)],
        );
        // A label that is missing equals the empty string.
        assert_vector(
            &engine,
            "cpu_usage_system{zone=\"\", host=~\"h1|h3\"}",
            600,
            &[("__name__=cpu_usage_system,host=h1", 2.0)],
        );
        let snapshot = engine.snapshot();
        let names = snapshot.promql_label_names(&[], T0, T0 + 1_200_000).unwrap();
        assert_eq!(names, ["__name__", "host", "instance", "job", "le"]);
        let metrics = snapshot.promql_label_values("__name__", &[], T0, T0 + 1_200_000).unwrap();
        assert_eq!(
            metrics,
            [
                "cpu_usage_system",
                "cpu_usage_user",
                "gone",
                "http_requests_total",
                "latency_bucket"
            ]
        );
        let jobs = snapshot
            .promql_label_values("job", &["http_requests_total{instance=\"a\"}".to_string()], T0, T0 + 1_200_000)
            .unwrap();
        assert_eq!(jobs, ["api", "db"]);
        let series = snapshot.promql_series(&["{job=~\".+\"}".to_string()], T0, T0 + 1_200_000).unwrap();
        assert_eq!(series.len(), 4, "{series:?}");
        // Nothing was stored a day later.
        let later = snapshot
            .promql_series(&["{job=~\".+\"}".to_string()], T0 + 86_400_000, T0 + 90_000_000)
            .unwrap();
        assert!(later.is_empty(), "{later:?}");
        assert!(matches!(
            snapshot.promql_series(&[], T0, T0),
            Err(Error::InvalidInput { reason, .. }) if reason.contains("match[]")
        ));
    }

    #[test]
    fn lookback_offset_and_at_move_the_instant() {
        let (_dir, engine) = store();
        // Samples every 60 s: at 90 s the newest is the one at 60 s.
        assert_vector(
            &engine,
            "cpu_usage_user{host=\"h1\"}",
            90,
            &[("__name__=cpu_usage_user,host=h1", 1.0)],
        );
        // The newest sample of `gone` is at 120 s: seen until 420 s, not after.
        assert_vector(&engine, "gone", 420, &[("__name__=gone,job=x", 1.0)]);
        assert_vector(&engine, "gone", 421, &[]);
        assert_vector(
            &engine,
            "cpu_usage_user{host=\"h1\"} offset 5m",
            600,
            &[("__name__=cpu_usage_user,host=h1", 5.0)],
        );
        let at_300 = format!("cpu_usage_user{{host=\"h1\"}} @ {}", T0 / 1000 + 300);
        assert_vector(&engine, &at_300, 1200, &[("__name__=cpu_usage_user,host=h1", 5.0)]);
        assert_vector(
            &engine,
            "timestamp(cpu_usage_user{host=\"h1\"})",
            90,
            &[("host=h1", (T0 / 1000 + 60) as f64)],
        );
    }

    #[test]
    fn rates_extrapolate_as_prometheus_does() {
        let (_dir, engine) = store();
        // A window of 5 minutes holds 21 samples 15 s apart, exactly covering it.
        assert_vector(
            &engine,
            "rate(http_requests_total[5m])",
            600,
            &[
                ("instance=a,job=api", 10.0 / 15.0),
                ("instance=b,job=api", 20.0 / 15.0),
                ("instance=a,job=db", 5.0 / 15.0),
            ],
        );
        assert_vector(
            &engine,
            "increase(http_requests_total{job=\"db\"}[5m])",
            600,
            &[("instance=a,job=db", 100.0)],
        );
        assert_vector(
            &engine,
            "irate(http_requests_total{job=\"db\"}[1m])",
            600,
            &[("instance=a,job=db", 5.0 / 15.0)],
        );
        assert_vector(
            &engine,
            "idelta(http_requests_total{job=\"db\"}[1m])",
            600,
            &[("instance=a,job=db", 5.0)],
        );
        // A window of 50 s at 600 s holds samples at 555..600 (4 samples, 45 s): the start
        // is 5 s before the first sample, under 1.1 intervals, so it extrapolates to 50 s.
        assert_vector(
            &engine,
            "delta(http_requests_total{job=\"db\"}[50s])",
            600,
            &[("instance=a,job=db", 15.0 * 50.0 / 45.0)],
        );
        assert_vector(&engine, "deriv(cpu_usage_user{host=\"h2\"}[10m])", 600, &[("host=h2", 2.0 / 60.0)]);
        // usage_user of h1 grows one per minute: in 10 minutes it is 20.
        assert_vector(
            &engine,
            "predict_linear(cpu_usage_user{host=\"h1\"}[10m], 600)",
            600,
            &[("host=h1", 20.0)],
        );
        assert_vector(
            &engine,
            "resets(http_requests_total{job=\"db\"}[5m])",
            600,
            &[("instance=a,job=db", 0.0)],
        );
        assert_vector(&engine, "changes(cpu_usage_system{host=\"h1\"}[5m])", 600, &[("host=h1", 0.0)]);
    }

    #[test]
    fn over_time_functions_read_the_window() {
        let (_dir, engine) = store();
        // Window [300, 600] of h1's usage_user: 5, 6, 7, 8, 9, 10.
        let h1 = "cpu_usage_user{host=\"h1\"}[5m]";
        for (f, v) in [
            ("avg_over_time", 7.5),
            ("min_over_time", 5.0),
            ("max_over_time", 10.0),
            ("sum_over_time", 45.0),
            ("count_over_time", 6.0),
            ("stdvar_over_time", 17.5 / 6.0),
            ("present_over_time", 1.0),
        ] {
            assert_vector(&engine, &format!("{f}({h1})"), 600, &[("host=h1", v)]);
        }
        assert_vector(
            &engine,
            &format!("stddev_over_time({h1})"),
            600,
            &[("host=h1", (17.5f64 / 6.0).sqrt())],
        );
        assert_vector(&engine, &format!("quantile_over_time(0.5, {h1})"), 600, &[("host=h1", 7.5)]);
        // last_over_time keeps the metric name.
        assert_vector(
            &engine,
            &format!("last_over_time({h1})"),
            600,
            &[("__name__=cpu_usage_user,host=h1", 10.0)],
        );
        assert_vector(&engine, "absent_over_time(gone[1m])", 600, &[("", 1.0)]);
        assert_vector(&engine, "absent_over_time(gone{job=\"x\"}[1m])", 600, &[("job=x", 1.0)]);
        assert_vector(&engine, "absent_over_time(gone[5m])", 300, &[]);
    }

    #[test]
    fn aggregations_group_by_and_without_labels() {
        let (_dir, engine) = store();
        // At 600 s: api/a 400, api/b 800, db/a 200.
        assert_vector(&engine, "sum(http_requests_total)", 600, &[("", 1400.0)]);
        assert_vector(
            &engine,
            "sum by (job) (http_requests_total)",
            600,
            &[("job=api", 1200.0), ("job=db", 200.0)],
        );
        assert_vector(
            &engine,
            "max without (instance) (http_requests_total)",
            600,
            &[("job=api", 800.0), ("job=db", 200.0)],
        );
        assert_vector(&engine, "avg(http_requests_total)", 600, &[("", 1400.0 / 3.0)]);
        assert_vector(
            &engine,
            "count by (instance) (http_requests_total)",
            600,
            &[("instance=a", 2.0), ("instance=b", 1.0)],
        );
        assert_vector(&engine, "min(http_requests_total)", 600, &[("", 200.0)]);
        assert_vector(
            &engine,
            "group by (job) (http_requests_total)",
            600,
            &[("job=api", 1.0), ("job=db", 1.0)],
        );
        let variance = ((400.0f64 - 1400.0 / 3.0).powi(2) + (800.0f64 - 1400.0 / 3.0).powi(2) + (200.0f64 - 1400.0 / 3.0).powi(2)) / 3.0;
        assert_vector(&engine, "stdvar(http_requests_total)", 600, &[("", variance)]);
        assert_vector(&engine, "stddev(http_requests_total)", 600, &[("", variance.sqrt())]);
        assert_vector(&engine, "quantile(0.5, http_requests_total)", 600, &[("", 400.0)]);
        // An instant topk answers in rank order, as Prometheus does; other answers are in
        // label order.
        assert_eq!(
            vector(&engine, "topk(2, http_requests_total)", 600),
            [
                ("__name__=http_requests_total,instance=b,job=api".to_string(), 800.0),
                ("__name__=http_requests_total,instance=a,job=api".to_string(), 400.0),
            ]
        );
        let sum: Vec<String> = vector(&engine, "sum by (job) (http_requests_total)", 600)
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(sum, ["job=api", "job=db"]);
        assert_vector(
            &engine,
            "bottomk by (job) (1, http_requests_total)",
            600,
            &[
                ("__name__=http_requests_total,instance=a,job=api", 400.0),
                ("__name__=http_requests_total,instance=a,job=db", 200.0),
            ],
        );
        assert_vector(&engine, "count_values(\"v\", cpu_usage_system)", 600, &[("v=2", 2.0)]);
        // Equal values: the first series in label order is kept, as Prometheus keeps it.
        assert_vector(
            &engine,
            "topk(1, cpu_usage_system)",
            600,
            &[("__name__=cpu_usage_system,host=h1", 2.0)],
        );
        assert_vector(
            &engine,
            "bottomk(1, cpu_usage_system)",
            600,
            &[("__name__=cpu_usage_system,host=h1", 2.0)],
        );
    }

    #[test]
    fn binary_operators_match_vectors() {
        let (_dir, engine) = store();
        assert_vector(&engine, "http_requests_total{job=\"db\"} * 2", 600, &[("instance=a,job=db", 400.0)]);
        assert_vector(
            &engine,
            "1000 - http_requests_total{job=\"db\"}",
            600,
            &[("instance=a,job=db", 800.0)],
        );
        assert_vector(
            &engine,
            "http_requests_total > 300",
            600,
            &[
                ("__name__=http_requests_total,instance=a,job=api", 400.0),
                ("__name__=http_requests_total,instance=b,job=api", 800.0),
            ],
        );
        assert_vector(
            &engine,
            "300 < http_requests_total{instance=\"a\"}",
            600,
            &[("__name__=http_requests_total,instance=a,job=api", 400.0)],
        );
        assert_vector(
            &engine,
            "http_requests_total{instance=\"a\"} > bool 300",
            600,
            &[("instance=a,job=api", 1.0), ("instance=a,job=db", 0.0)],
        );
        // One-to-one on the same labels; the name goes.
        assert_vector(
            &engine,
            "cpu_usage_user / cpu_usage_system",
            600,
            &[("host=h1", 5.0), ("host=h2", 10.0)],
        );
        // Many-to-one with a label from the one side.
        assert_vector(
            &engine,
            "http_requests_total / on (job) group_left sum by (job) (http_requests_total)",
            600,
            &[
                ("instance=a,job=api", 400.0 / 1200.0),
                ("instance=b,job=api", 800.0 / 1200.0),
                ("instance=a,job=db", 1.0),
            ],
        );
        // One-to-many: the right side is the many side and keeps its labels.
        assert_vector(
            &engine,
            "sum by (job) (http_requests_total) / on (job) group_right http_requests_total",
            600,
            &[
                ("instance=a,job=api", 1200.0 / 400.0),
                ("instance=b,job=api", 1200.0 / 800.0),
                ("instance=a,job=db", 1.0),
            ],
        );
        // Without group_left, two left series matching one right series is an error.
        let error = at(&engine, "http_requests_total / on (job) sum by (job) (http_requests_total)", 600).unwrap_err();
        assert!(
            matches!(&error, Error::QueryExecution { reason } if reason.contains("many-to-one matching must be explicit")),
            "{error}"
        );
        let error = at(&engine, "sum(http_requests_total) / on () http_requests_total", 600).unwrap_err();
        assert!(
            matches!(&error, Error::QueryExecution { reason } if reason.contains("many-to-many matching not allowed")),
            "{error}"
        );
        // Set operators.
        assert_vector(
            &engine,
            "http_requests_total and http_requests_total{job=\"db\"}",
            600,
            &[("__name__=http_requests_total,instance=a,job=db", 200.0)],
        );
        assert_vector(
            &engine,
            "http_requests_total unless on (job) http_requests_total{instance=\"b\"}",
            600,
            &[("__name__=http_requests_total,instance=a,job=db", 200.0)],
        );
        assert_vector(
            &engine,
            "gone or cpu_usage_system{host=\"h1\"}",
            600,
            &[("__name__=cpu_usage_system,host=h1", 2.0)],
        );
        assert_vector(&engine, "vector(1) + vector(1)", 0, &[("", 2.0)]);
        assert!(matches!(at(&engine, "1 + 2 * 3", 0).unwrap(), PromValue::Scalar { value, .. } if value == 7.0));
        assert!(matches!(at(&engine, "2 ^ 10 % 1000", 0).unwrap(), PromValue::Scalar { value, .. } if value == 24.0));
    }

    #[test]
    fn functions_histograms_labels_and_subqueries() {
        let (_dir, engine) = store();
        // Rank 95 of 100 lies in (1, +Inf]: the answer is the last finite bound.
        assert_vector(&engine, "histogram_quantile(0.95, latency_bucket)", 600, &[("", 1.0)]);
        // Rank 50 lies in (0.1, 0.5], 40 of its 50: 0.1 + 0.4 * 40/50.
        assert_vector(&engine, "histogram_quantile(0.5, latency_bucket)", 600, &[("", 0.1 + 0.4 * 0.8)]);
        assert_vector(&engine, "histogram_quantile(0.05, latency_bucket)", 600, &[("", 0.05)]);
        assert_vector(
            &engine,
            "label_replace(cpu_usage_system{host=\"h1\"}, \"node\", \"n-$1\", \"host\", \"h(.*)\")",
            600,
            &[("__name__=cpu_usage_system,host=h1,node=n-1", 2.0)],
        );
        assert_vector(
            &engine,
            "label_join(cpu_usage_system{host=\"h1\"}, \"both\", \"/\", \"__name__\", \"host\")",
            600,
            &[("__name__=cpu_usage_system,both=cpu_usage_system/h1,host=h1", 2.0)],
        );
        assert_vector(&engine, "absent(nothing{job=\"x\", env=~\"p.*\"})", 600, &[("job=x", 1.0)]);
        assert_vector(&engine, "absent(cpu_usage_user)", 600, &[]);
        assert_vector(
            &engine,
            "clamp(cpu_usage_user, 12, 15)",
            600,
            &[("host=h1", 12.0), ("host=h2", 15.0)],
        );
        assert_vector(
            &engine,
            "clamp_max(cpu_usage_user, 12)",
            600,
            &[("host=h1", 10.0), ("host=h2", 12.0)],
        );
        assert_vector(
            &engine,
            "round(cpu_usage_user / 3, 0.5)",
            600,
            &[("host=h1", 3.5), ("host=h2", 6.5)],
        );
        assert_vector(&engine, "abs(-cpu_usage_system{host=\"h1\"})", 600, &[("host=h1", 2.0)]);
        assert!(matches!(at(&engine, "scalar(cpu_usage_system{host=\"h1\"}) * time()", 1).unwrap(),
            PromValue::Scalar { value, .. } if close(value, 2.0 * (T0 / 1000 + 1) as f64)));
        // The max over 10 minutes of a per-minute rate of h1 (one per minute).
        assert_vector(
            &engine,
            "max_over_time(rate(cpu_usage_user{host=\"h1\"}[2m])[10m:1m])",
            900,
            &[("host=h1", 1.0 / 60.0)],
        );
        assert_vector(
            &engine,
            "count_over_time(cpu_usage_user{host=\"h1\"}[10m:1m])",
            600,
            &[("host=h1", 11.0)],
        );
        match at(&engine, "cpu_usage_user{host=\"h1\"}[2m]", 600).unwrap() {
            PromValue::Matrix(series) => assert_eq!(
                series[0].points,
                vec![(T0 + 480_000, 8.0), (T0 + 540_000, 9.0), (T0 + 600_000, 10.0)]
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn range_queries_evaluate_every_step() {
        let (_dir, engine) = store();
        let snapshot = engine.snapshot();
        let options = PromOptions::default();
        match snapshot
            .promql_range("sum(cpu_usage_user)", T0, T0 + 300_000, 60_000, &options)
            .unwrap()
        {
            PromValue::Matrix(series) => {
                assert_eq!(series.len(), 1);
                let expected: Vec<(i64, f64)> = (0..=5).map(|i| (T0 + i * 60_000, 3.0 * i as f64)).collect();
                assert_eq!(series[0].points, expected);
            }
            other => panic!("{other:?}"),
        }
        // `gone` ends at 120 s and is seen for five minutes more.
        match snapshot.promql_range("gone", T0, T0 + 1_200_000, 60_000, &options).unwrap() {
            PromValue::Matrix(series) => assert_eq!(series[0].points.len(), 8),
            other => panic!("{other:?}"),
        }
        match snapshot.promql_range("2 * 3", T0, T0 + 120_000, 60_000, &options).unwrap() {
            PromValue::Matrix(series) => assert_eq!(series[0].points, vec![(T0, 6.0), (T0 + 60_000, 6.0), (T0 + 120_000, 6.0)]),
            other => panic!("{other:?}"),
        }
        let error = snapshot.promql_range("up", T0, T0 + 1_000_000_000, 1, &options).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidInput { reason, .. } if reason.contains("11000")),
            "{error}"
        );
        let error = snapshot
            .promql_range("cpu_usage_user[5m]", T0, T0 + 60_000, 60_000, &options)
            .unwrap_err();
        assert!(
            matches!(&error, Error::InvalidInput { reason, .. } if reason.contains("range query")),
            "{error}"
        );
    }

    #[test]
    fn bad_and_unsupported_queries_are_named() {
        let (_dir, engine) = store();
        assert!(matches!(at(&engine, "sum(", 0), Err(Error::InvalidInput { .. })));
        assert!(matches!(at(&engine, "", 0), Err(Error::InvalidInput { .. })));
        let error = at(&engine, "{job=~\".*\"}", 0).unwrap_err();
        assert!(
            matches!(&error, Error::InvalidInput { reason, .. } if reason.contains("empty")),
            "{error}"
        );
        let error = at(&engine, "double_exponential_smoothing(cpu_usage_user[5m], 0.5, 0.5)", 600).unwrap_err();
        assert!(
            matches!(&error, Error::Unsupported { what } if what.contains("double_exponential_smoothing")),
            "{error}"
        );
        let error = at(&engine, "limitk(1, cpu_usage_user)", 600).unwrap_err();
        assert!(matches!(&error, Error::Unsupported { what } if what.contains("limitk")), "{error}");
        // Two series that differ only by name collide once the name is dropped.
        let error = at(&engine, "rate({__name__=~\"cpu_.*\", host=\"h1\"}[5m])", 600).unwrap_err();
        assert!(
            matches!(&error, Error::QueryExecution { reason } if reason.contains("same labelset")),
            "{error}"
        );
    }

    #[test]
    fn values_and_times_are_formatted_as_prometheus_does() {
        assert_eq!(format_value(1.0), "1");
        assert_eq!(format_value(0.1), "0.1");
        assert_eq!(format_value(1e21), "1000000000000000000000");
        assert_eq!(format_value(f64::NAN), "NaN");
        assert_eq!(format_value(f64::NEG_INFINITY), "-Inf");
        assert_eq!(format_time(1_435_781_451_781), serde_json::json!(1_435_781_451.781));
        assert_eq!(format_time(1_435_781_451_000), serde_json::json!(1_435_781_451));
    }
}
