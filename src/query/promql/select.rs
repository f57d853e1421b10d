//! From PromQL selectors to annals series: which (series, field) pairs a selector means,
//! their labels, and their samples in a time window.

use super::{Labels, METRIC_NAME};
use crate::error::{Error, Limit, Result};
use crate::index::{SeriesSelector, TagPredicate};
use crate::model::{SeriesId, SeriesKind};
use crate::read::{Order, ReadView};
use crate::time::TimeRange;
use promql_parser::label::{MatchOp, Matcher, Matchers};
use promql_parser::parser::{Expr, VectorSelector};
use std::sync::Arc;

/// The field whose series is named after the measurement alone.
const VALUE_FIELD: &str = "value";

/// One Prometheus series: a field of an annals series.
#[derive(Debug, Clone)]
pub(crate) struct SeriesRef {
    pub id: SeriesId,
    pub field: String,
    pub labels: Labels,
}

/// The samples of one series: (milliseconds, value), ascending, one per millisecond.
#[derive(Debug, Clone)]
pub(crate) struct Loaded {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

/// The metric name of a field of a measurement.
pub(crate) fn metric_name(measurement: &str, field: &str) -> String {
    if field == VALUE_FIELD {
        measurement.to_string()
    } else {
        format!("{measurement}_{field}")
    }
}

/// The (measurement, field) pairs a metric name can stand for.
fn name_candidates(name: &str) -> Vec<(String, String)> {
    let mut out = vec![(name.to_string(), VALUE_FIELD.to_string())];
    for (i, _) in name.match_indices('_') {
        let (measurement, field) = (&name[..i], &name[i + 1..]);
        if !measurement.is_empty() && !field.is_empty() && field != VALUE_FIELD {
            out.push((measurement.to_string(), field.to_string()));
        }
    }
    out
}

/// Nanoseconds of a millisecond window `[lo, hi]`.
pub(crate) fn ns_range(lo_ms: i64, hi_ms: i64) -> TimeRange {
    let start = lo_ms.saturating_mul(1_000_000);
    let end = hi_ms.saturating_add(1).saturating_mul(1_000_000);
    TimeRange::new(start, end.max(start))
}

fn unsupported_or(matchers: &Matchers) -> Result<()> {
    if matchers.or_matchers.is_empty() {
        Ok(())
    } else {
        Err(Error::Unsupported {
            what: "a selector with `or` between matcher groups".into(),
        })
    }
}

/// The series `matchers` select among those with a sample in `range`.
pub(crate) fn resolve(view: &ReadView<'_>, matchers: &[Matcher], range: TimeRange) -> Result<Vec<SeriesRef>> {
    if matchers.iter().all(|m| m.is_match("")) {
        return Err(Error::invalid(
            "a vector selector must contain at least one matcher that does not match the empty string (such as a metric name)",
        ));
    }
    let name = matchers
        .iter()
        .find(|m| m.name == METRIC_NAME && m.op == MatchOp::Equal)
        .map(|m| m.value.clone());
    // Equality on a tag narrows the series through the tag index; the rest is checked on
    // the labels below.
    let pushed = TagPredicate::all(
        matchers
            .iter()
            .filter(|m| m.name != METRIC_NAME && m.op == MatchOp::Equal && !m.value.is_empty())
            .map(|m| TagPredicate::eq(m.name.clone(), m.value.clone()))
            .collect(),
    );
    let base = SeriesSelector {
        kind: Some(SeriesKind::Metric),
        measurement: None,
        predicate: pushed,
    };
    let mut out = Vec::new();
    let mut seen_series = 0u64;
    let mut consider = |id: SeriesId, only_field: Option<&str>, out: &mut Vec<SeriesRef>| -> Result<()> {
        seen_series += 1;
        if seen_series > view.limits.max_series {
            return Err(Error::LimitExceeded {
                limit: Limit::QuerySeries,
                value: seen_series,
                max: view.limits.max_series,
                context: Some("PromQL selector".into()),
            });
        }
        let Some(key) = view.series_key(id) else { return Ok(()) };
        let fields = view.field_names(&[id], range)?;
        for field in fields {
            if only_field.is_some_and(|f| f != field) {
                continue;
            }
            let mut labels: Vec<(String, String)> = key.tags().to_vec();
            labels.push((METRIC_NAME.to_string(), metric_name(key.measurement(), &field)));
            labels.sort();
            if matchers.iter().all(|m| m.is_match(super::label(&labels, &m.name).unwrap_or(""))) {
                out.push(SeriesRef {
                    id,
                    field,
                    labels: Arc::new(labels),
                });
            }
        }
        Ok(())
    };
    match name {
        Some(name) => {
            for (measurement, field) in name_candidates(&name) {
                let selector = SeriesSelector {
                    measurement: Some(measurement),
                    ..base.clone()
                };
                for id in view.select(&selector)? {
                    consider(id, Some(&field), &mut out)?;
                }
            }
        }
        None => {
            for id in view.select(&base)? {
                consider(id, None, &mut out)?;
            }
        }
    }
    // In label order, as Prometheus' index gives series: `topk` and `bottomk` keep the
    // first of equal values, so ties are broken the same way.
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// Reads the numeric samples of `series` in `[lo_ms, hi_ms]`, counting them against the
/// query's budget of points.
pub(crate) fn load(view: &ReadView<'_>, series: &[SeriesRef], lo_ms: i64, hi_ms: i64, scanned: &mut u64) -> Result<Vec<Loaded>> {
    let range = ns_range(lo_ms, hi_ms);
    let mut out = Vec::with_capacity(series.len());
    for s in series {
        let fields: Arc<[String]> = Arc::from(vec![s.field.clone()]);
        let mut points: Vec<(i64, f64)> = Vec::new();
        for chunk in view.series_chunks(s.id, range, Some(fields), Order::Ascending)? {
            let chunk = chunk?;
            let columns: Vec<&crate::chunk::Column> = chunk.columns.iter().filter(|c| *c.name == *s.field).collect();
            let mut push = |ts: i64, value: f64| {
                let ms = ts.div_euclid(1_000_000);
                match points.last_mut() {
                    // Two samples in one millisecond: the later one stands.
                    Some(last) if last.0 == ms => last.1 = value,
                    _ => points.push((ms, value)),
                }
            };
            // The common case, one float column with a value in every row, read as a slice.
            if let [column] = columns.as_slice()
                && column.validity.is_empty()
                && let crate::chunk::ColumnValues::F64(values) = &column.values
            {
                for (&ts, &value) in chunk.timestamps.iter().zip(values) {
                    push(ts, value);
                }
                continue;
            }
            for (row, &ts) in chunk.timestamps.iter().enumerate() {
                if let Some(value) = columns.iter().find_map(|c| c.value(row).and_then(|v| numeric(&v))) {
                    push(ts, value);
                }
            }
        }
        *scanned += points.len() as u64;
        if *scanned > view.limits.max_points_scanned {
            return Err(Error::LimitExceeded {
                limit: Limit::QueryPointsScanned,
                value: *scanned,
                max: view.limits.max_points_scanned,
                context: Some("PromQL query".into()),
            });
        }
        out.push(Loaded {
            labels: s.labels.clone(),
            points,
        });
    }
    Ok(out)
}

fn numeric(value: &crate::model::FieldValue) -> Option<f64> {
    use crate::model::FieldValue;
    match value {
        FieldValue::F64(v) => Some(*v),
        FieldValue::I64(v) => Some(*v as f64),
        FieldValue::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        FieldValue::Str(_) | FieldValue::Bytes(_) => None,
    }
}

/// Parses a `match[]` selector: a vector selector, nothing else.
pub(crate) fn parse_selector(text: &str) -> Result<VectorSelector> {
    match super::parse(text)? {
        Expr::VectorSelector(vs) => {
            unsupported_or(&vs.matchers)?;
            Ok(vs)
        }
        _ => Err(Error::invalid(format!("{text:?} is not a series selector"))),
    }
}

/// The matchers of a vector selector, its name included.
pub(crate) fn selector_matchers(vs: &VectorSelector) -> Result<Vec<Matcher>> {
    unsupported_or(&vs.matchers)?;
    let mut matchers = vs.matchers.matchers.clone();
    if let Some(name) = &vs.name
        && !matchers.iter().any(|m| m.name == METRIC_NAME)
    {
        matchers.push(Matcher::new(MatchOp::Equal, METRIC_NAME, name));
    }
    Ok(matchers)
}

/// The series any of `selectors` matches with a sample in `[start_ms, end_ms]`, sorted and
/// without repeats.
pub(crate) fn series_matching(view: &ReadView<'_>, selectors: &[String], start_ms: i64, end_ms: i64) -> Result<Vec<Labels>> {
    if selectors.is_empty() {
        return Err(Error::invalid("no match[] parameter provided"));
    }
    let range = ns_range(start_ms, end_ms);
    let mut out: Vec<Labels> = Vec::new();
    for text in selectors {
        let vs = parse_selector(text)?;
        out.extend(resolve(view, &selector_matchers(&vs)?, range)?.into_iter().map(|s| s.labels));
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Like [`series_matching`], but every metric series when there are no selectors.
pub(crate) fn series_or_all(view: &ReadView<'_>, selectors: &[String], start_ms: i64, end_ms: i64) -> Result<Vec<Labels>> {
    if !selectors.is_empty() {
        return series_matching(view, selectors, start_ms, end_ms);
    }
    let range = ns_range(start_ms, end_ms);
    let any_name = Matcher::new(MatchOp::Re(regex_any_nonempty()), METRIC_NAME, ".+");
    let mut out: Vec<Labels> = resolve(view, &[any_name], range)?.into_iter().map(|s| s.labels).collect();
    out.sort();
    out.dedup();
    Ok(out)
}

fn regex_any_nonempty() -> regex::Regex {
    // A constant pattern: it always compiles.
    #[allow(clippy::expect_used)]
    regex::Regex::new("^(?:.+)$").expect("a constant pattern compiles")
}
