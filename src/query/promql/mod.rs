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
//! [`Error::Unsupported`] naming it (the date functions, `limitk`, fill modifiers, `or`
//! between matcher groups); PromQL's own rules broken by the data (many-to-many matching,
//! two results with the same labels) are [`Error::QueryExecution`]. Native histograms are
//! never stored, so there are none to read.

mod eval;
mod functions;
mod select;

pub use eval::{AGGREGATIONS, MAX_STEPS, PromOptions};
pub use functions::SUPPORTED as FUNCTIONS;

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
    let mut names: Vec<String> = select::series_or_all(view, selectors, start_ms, end_ms)?
        .iter()
        .flat_map(|labels| labels.iter().map(|(name, _)| name.clone()))
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Values of one label over the series `selectors` match (all series when empty), sorted.
pub(crate) fn label_values(view: &ReadView<'_>, name: &str, selectors: &[String], start_ms: i64, end_ms: i64) -> Result<Vec<String>> {
    let mut values: Vec<String> = select::series_or_all(view, selectors, start_ms, end_ms)?
        .iter()
        .filter_map(|labels| label(labels, name).map(str::to_string))
        .collect();
    values.sort();
    values.dedup();
    Ok(values)
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
mod tests;
