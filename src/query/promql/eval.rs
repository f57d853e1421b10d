//! The PromQL evaluator: every expression is evaluated at all steps at once, an instant
//! vector as one row of optional values per series (one slot per step), so a selector
//! reads its samples once for the whole range.

use super::functions;
use super::select::{self, Loaded};
use super::{Labels, METRIC_NAME, PromSample, PromSeries, PromValue, label};
use crate::error::{Error, Result};
use crate::read::ReadView;
use promql_parser::label::MatchOp;
use promql_parser::parser::{
    AggregateExpr, AtModifier, BinModifier, BinaryExpr, Expr, LabelModifier, Offset, SubqueryExpr, VectorMatchCardinality, VectorSelector,
};
use rustc_hash::FxHashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Most steps a range query may have (Prometheus' own bound).
pub const MAX_STEPS: usize = 11_000;

/// The aggregation operators annals evaluates.
pub const AGGREGATIONS: &[&str] = &[
    "avg",
    "bottomk",
    "count",
    "count_values",
    "group",
    "max",
    "min",
    "quantile",
    "stddev",
    "stdvar",
    "sum",
    "topk",
];

/// Options of PromQL evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct PromOptions {
    /// How far back an instant selector looks for a sample (default 5 minutes).
    pub lookback_ms: i64,
    /// The step of a subquery that names none (default 1 minute, Prometheus' default
    /// evaluation interval).
    pub default_subquery_step_ms: i64,
}

impl Default for PromOptions {
    fn default() -> Self {
        PromOptions {
            lookback_ms: 300_000,
            default_subquery_step_ms: 60_000,
        }
    }
}

/// One series of an instant vector: a value or none at each step.
#[derive(Debug, Clone)]
pub(crate) struct StepSeries {
    pub labels: Labels,
    pub values: Vec<Option<f64>>,
}

/// Samples of series and, for each step, the end of its window (`[end - range, end]`).
#[derive(Debug, Clone)]
pub(crate) struct RangeVector {
    pub series: Vec<Loaded>,
    pub ends: Vec<i64>,
    pub range_ms: i64,
}

impl RangeVector {
    /// The samples of series `s` in the window of step `i`.
    pub fn window(&self, s: usize, i: usize) -> &[(i64, f64)] {
        let points = &self.series[s].points;
        let end = self.ends[i];
        let lo = points.partition_point(|p| p.0 < end.saturating_sub(self.range_ms));
        let hi = points.partition_point(|p| p.0 <= end);
        &points[lo..hi.max(lo)]
    }
}

/// A value at every step.
#[derive(Debug, Clone)]
pub(crate) enum Value {
    Scalar(Vec<f64>),
    Vector(Vec<StepSeries>),
    Matrix(RangeVector),
    String(String),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::Vector(_) => "instant vector",
            Value::Matrix(_) => "range vector",
            Value::String(_) => "string",
        }
    }
}

/// Instant vectors that come from elsewhere than metric series: LogQL's log range
/// aggregations (`count_over_time({job="x"}[5m])`) are evaluated by the LogQL module and
/// stand in the expression as selectors of names only it answers.
pub(crate) trait ExternalVectors {
    /// The series of the selector named `name` at each of `times` (ms), or `None` when the
    /// name is not one of this source's.
    fn vector(&mut self, name: &str, times: &[i64]) -> Option<Result<Vec<StepSeries>>>;
}

/// Evaluates expressions over one read view.
pub(crate) struct Evaluator<'a, 'v> {
    view: &'a ReadView<'v>,
    options: &'a PromOptions,
    /// Selectors answered before the store is read, if any.
    external: Option<&'a mut dyn ExternalVectors>,
    /// The query's start and end, for `@ start()` and `@ end()`.
    query_start: i64,
    query_end: i64,
    /// Samples read so far, against the query limits.
    scanned: u64,
}

pub(crate) fn duration_ms(d: &Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(t: &SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => duration_ms(&d),
        Err(e) => -duration_ms(&e.duration()),
    }
}

/// Labels without `__name__`.
pub(crate) fn drop_name(labels: &Labels) -> Labels {
    if label(labels, METRIC_NAME).is_none() {
        return labels.clone();
    }
    Arc::new(labels.iter().filter(|(n, _)| n != METRIC_NAME).cloned().collect())
}

fn labels_text(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(n, v)| format!("{n}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Merges series with equal labels into one; two values at one step are an error, as in
/// Prometheus ("vector cannot contain metrics with the same labelset").
pub(crate) fn merge_same_labels(series: Vec<StepSeries>) -> Result<Vec<StepSeries>> {
    let mut index: FxHashMap<Labels, usize> = FxHashMap::default();
    let mut out: Vec<StepSeries> = Vec::with_capacity(series.len());
    for s in series {
        match index.get(&s.labels) {
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
            Some(&at) => {
                let target = &mut out[at];
                for (slot, value) in target.values.iter_mut().zip(s.values) {
                    if value.is_some() {
                        if slot.is_some() {
                            return Err(Error::QueryExecution {
                                reason: format!(
                                    "vector cannot contain metrics with the same labelset {}",
                                    labels_text(&target.labels)
                                ),
                            });
                        }
                        *slot = value;
                    }
                }
            }
        }
    }
    Ok(out)
}

impl<'a, 'v> Evaluator<'a, 'v> {
    pub fn new(view: &'a ReadView<'v>, options: &'a PromOptions, query_start: i64, query_end: i64) -> Evaluator<'a, 'v> {
        Evaluator {
            view,
            options,
            query_start,
            query_end,
            scanned: 0,
            external: None,
        }
    }

    /// Answers the selectors `external` knows from it rather than from metric series.
    #[cfg(feature = "loki")]
    pub fn with_external(mut self, external: &'a mut dyn ExternalVectors) -> Evaluator<'a, 'v> {
        self.external = Some(external);
        self
    }

    /// The value of `expr` at `time_ms`.
    pub fn instant(&mut self, expr: &Expr, time_ms: i64) -> Result<PromValue> {
        Ok(match self.eval(expr, &[time_ms])? {
            Value::Scalar(v) => PromValue::Scalar { time_ms, value: v[0] },
            Value::String(s) => PromValue::String { time_ms, value: s },
            Value::Vector(series) => {
                let mut samples: Vec<PromSample> = merge_same_labels(series)?
                    .into_iter()
                    .filter_map(|s| {
                        s.values[0].map(|value| PromSample {
                            labels: s.labels,
                            time_ms,
                            value,
                        })
                    })
                    .collect();
                let ordered = match expr {
                    Expr::Call(c) => c.func.name == "sort" || c.func.name == "sort_desc",
                    Expr::Aggregate(a) => matches!(a.op.to_string().as_str(), "topk" | "bottomk"),
                    _ => false,
                };
                if !ordered {
                    samples.sort_by(|a, b| a.labels.cmp(&b.labels));
                }
                PromValue::Vector(samples)
            }
            Value::Matrix(m) => {
                let mut out: Vec<PromSeries> = (0..m.series.len())
                    .map(|s| PromSeries {
                        labels: m.series[s].labels.clone(),
                        points: m.window(s, 0).to_vec(),
                    })
                    .filter(|s| !s.points.is_empty())
                    .collect();
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                PromValue::Matrix(out)
            }
        })
    }

    /// The values of `expr` at each step of `[start, end]`.
    pub fn range(&mut self, expr: &Expr, start_ms: i64, end_ms: i64, step_ms: i64) -> Result<PromValue> {
        let steps = step_times(start_ms, end_ms, step_ms)?;
        let series = match self.eval(expr, &steps)? {
            Value::Scalar(values) => vec![StepSeries {
                labels: Arc::new(Vec::new()),
                values: values.into_iter().map(Some).collect(),
            }],
            Value::Vector(series) => merge_same_labels(series)?,
            other => {
                return Err(Error::invalid(format!(
                    "invalid expression type {:?} for range query, must be Scalar or instant Vector",
                    other.type_name()
                )));
            }
        };
        let mut out: Vec<PromSeries> = series
            .into_iter()
            .map(|s| PromSeries {
                labels: s.labels,
                points: steps.iter().zip(s.values).filter_map(|(&t, v)| v.map(|v| (t, v))).collect(),
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(PromValue::Matrix(out))
    }

    /// Evaluates `expr` at each of `steps`.
    pub fn eval(&mut self, expr: &Expr, steps: &[i64]) -> Result<Value> {
        match expr {
            Expr::NumberLiteral(n) => Ok(Value::Scalar(vec![n.val; steps.len()])),
            Expr::StringLiteral(s) => Ok(Value::String(s.val.clone())),
            Expr::Paren(p) => self.eval(&p.expr, steps),
            Expr::Unary(u) => match self.eval(&u.expr, steps)? {
                Value::Scalar(v) => Ok(Value::Scalar(v.into_iter().map(|x| -x).collect())),
                Value::Vector(series) => Ok(Value::Vector(
                    series
                        .into_iter()
                        .map(|s| StepSeries {
                            labels: drop_name(&s.labels),
                            values: s.values.into_iter().map(|v| v.map(|x| -x)).collect(),
                        })
                        .collect(),
                )),
                other => Err(Error::invalid(format!("unary minus cannot apply to a {}", other.type_name()))),
            },
            Expr::VectorSelector(vs) => Ok(Value::Vector(self.instant_selector(vs, steps, false)?)),
            Expr::MatrixSelector(ms) => {
                let range = duration_ms(&ms.range);
                let ends = self.shifted(steps, &ms.vs.at, &ms.vs.offset);
                let lo = ends.iter().copied().min().unwrap_or(0).saturating_sub(range);
                let hi = ends.iter().copied().max().unwrap_or(0);
                let series = self.read(&ms.vs, lo, hi)?;
                Ok(Value::Matrix(RangeVector {
                    series,
                    ends,
                    range_ms: range,
                }))
            }
            Expr::Subquery(sq) => Ok(Value::Matrix(self.subquery(sq, steps)?)),
            Expr::Aggregate(agg) => self.aggregate(agg, steps),
            Expr::Binary(bin) => self.binary(bin, steps),
            Expr::Call(call) => functions::call(self, call, steps),
            Expr::Extension(_) => Err(Error::Unsupported {
                what: "an extension expression".into(),
            }),
        }
    }

    /// The evaluation times of a selector at each step: `@` fixes them, `offset` moves them.
    fn shifted(&self, steps: &[i64], at: &Option<AtModifier>, offset: &Option<Offset>) -> Vec<i64> {
        let offset = offset_ms(offset);
        steps
            .iter()
            .map(|&t| {
                let base = match at {
                    None => t,
                    Some(AtModifier::Start) => self.query_start,
                    Some(AtModifier::End) => self.query_end,
                    Some(AtModifier::At(time)) => system_time_ms(time),
                };
                base.saturating_sub(offset)
            })
            .collect()
    }

    fn read(&mut self, vs: &VectorSelector, lo_ms: i64, hi_ms: i64) -> Result<Vec<Loaded>> {
        let matchers = select::selector_matchers(vs)?;
        let series = select::resolve(self.view, &matchers, select::ns_range(lo_ms, hi_ms))?;
        select::load(self.view, &series, lo_ms, hi_ms, &mut self.scanned)
    }

    /// An instant selector: the newest sample within the lookback window at each step, or
    /// (with `sample_times`) its time in seconds, for `timestamp()`.
    pub fn instant_selector(&mut self, vs: &VectorSelector, steps: &[i64], sample_times: bool) -> Result<Vec<StepSeries>> {
        let times = self.shifted(steps, &vs.at, &vs.offset);
        if let (Some(external), Some(name)) = (self.external.as_mut(), vs.name.as_deref())
            && let Some(answer) = external.vector(name, &times)
        {
            return answer;
        }
        let lookback = self.options.lookback_ms;
        let lo = times.iter().copied().min().unwrap_or(0).saturating_sub(lookback);
        let hi = times.iter().copied().max().unwrap_or(0);
        let loaded = self.read(vs, lo, hi)?;
        Ok(loaded
            .into_iter()
            .map(|l| {
                let values = times
                    .iter()
                    .map(|&t| {
                        let at = l.points.partition_point(|p| p.0 <= t);
                        let (ts, v) = *l.points.get(at.checked_sub(1)?)?;
                        (ts >= t.saturating_sub(lookback)).then_some(if sample_times { ts as f64 / 1000.0 } else { v })
                    })
                    .collect();
                StepSeries { labels: l.labels, values }
            })
            .collect())
    }

    fn subquery(&mut self, sq: &SubqueryExpr, steps: &[i64]) -> Result<RangeVector> {
        let range = duration_ms(&sq.range);
        let step = match &sq.step {
            Some(d) if !d.is_zero() => duration_ms(d),
            _ => self.options.default_subquery_step_ms,
        };
        let ends = self.shifted(steps, &sq.at, &sq.offset);
        let lo = ends.iter().copied().min().unwrap_or(0).saturating_sub(range);
        let hi = ends.iter().copied().max().unwrap_or(0);
        // Inner steps at multiples of the step, from the first one in the earliest window.
        let first = (lo.div_euclid(step) * step).saturating_add(if lo.rem_euclid(step) == 0 { 0 } else { step });
        let inner = step_times(first, hi, step)?;
        let series = match self.eval(&sq.expr, &inner)? {
            Value::Vector(series) => series,
            Value::Scalar(values) => vec![StepSeries {
                labels: Arc::new(Vec::new()),
                values: values.into_iter().map(Some).collect(),
            }],
            other => {
                return Err(Error::invalid(format!(
                    "a subquery needs an instant vector, not a {}",
                    other.type_name()
                )));
            }
        };
        let series = merge_same_labels(series)?
            .into_iter()
            .map(|s| Loaded {
                labels: s.labels,
                points: inner.iter().zip(s.values).filter_map(|(&t, v)| v.map(|v| (t, v))).collect(),
            })
            .collect();
        Ok(RangeVector {
            series,
            ends,
            range_ms: range,
        })
    }

    /// Evaluates an argument that must be a scalar (a number, `scalar(...)`, arithmetic
    /// of those).
    pub fn scalar_arg(&mut self, expr: &Expr, steps: &[i64], what: &str) -> Result<Vec<f64>> {
        match self.eval(expr, steps)? {
            Value::Scalar(v) => Ok(v),
            other => Err(Error::invalid(format!("{what} must be a scalar, not a {}", other.type_name()))),
        }
    }

    /// Evaluates an argument that must be an instant vector.
    pub fn vector_arg(&mut self, expr: &Expr, steps: &[i64], what: &str) -> Result<Vec<StepSeries>> {
        match self.eval(expr, steps)? {
            Value::Vector(v) => Ok(v),
            other => Err(Error::invalid(format!(
                "{what} must be an instant vector, not a {}",
                other.type_name()
            ))),
        }
    }

    /// Evaluates an argument that must be a range vector.
    pub fn matrix_arg(&mut self, expr: &Expr, steps: &[i64], what: &str) -> Result<RangeVector> {
        match self.eval(expr, steps)? {
            Value::Matrix(m) => Ok(m),
            other => Err(Error::invalid(format!(
                "{what} must be a range vector, not a {}",
                other.type_name()
            ))),
        }
    }

    fn aggregate(&mut self, agg: &AggregateExpr, steps: &[i64]) -> Result<Value> {
        let op = agg.op.to_string();
        if !AGGREGATIONS.contains(&op.as_str()) {
            return Err(Error::Unsupported {
                what: format!("the aggregation {op}"),
            });
        }
        let param = match &agg.param {
            None => None,
            Some(p) if op == "count_values" => match self.eval(p, steps)? {
                Value::String(s) => Some(Param::Label(s)),
                other => {
                    return Err(Error::invalid(format!(
                        "count_values needs a string parameter, not a {}",
                        other.type_name()
                    )));
                }
            },
            Some(p) => Some(Param::Number(self.scalar_arg(p, steps, &format!("the parameter of {op}"))?)),
        };
        let input = self.vector_arg(&agg.expr, steps, &format!("the argument of {op}"))?;
        aggregate(&op, param, &agg.modifier, input, steps.len()).map(Value::Vector)
    }

    fn binary(&mut self, bin: &BinaryExpr, steps: &[i64]) -> Result<Value> {
        let op = bin.op.to_string();
        let modifier = bin.modifier.as_ref();
        if let Some(m) = modifier
            && (m.fill_values.lhs.is_some() || m.fill_values.rhs.is_some())
        {
            return Err(Error::Unsupported {
                what: "the fill modifiers of binary operators".into(),
            });
        }
        let return_bool = modifier.is_some_and(|m| m.return_bool);
        let lhs = self.eval(&bin.lhs, steps)?;
        let rhs = self.eval(&bin.rhs, steps)?;
        match (lhs, rhs) {
            (Value::Scalar(l), Value::Scalar(r)) => {
                if is_comparison(&op) && !return_bool {
                    return Err(Error::invalid("comparisons between scalars must use the bool modifier"));
                }
                let values = l
                    .iter()
                    .zip(&r)
                    .map(|(&a, &b)| {
                        let (value, keep) = elem_binop(&op, a, b)?;
                        Ok(if is_comparison(&op) { f64::from(u8::from(keep)) } else { value })
                    })
                    .collect::<Result<Vec<f64>>>()?;
                Ok(Value::Scalar(values))
            }
            (Value::Vector(v), Value::Scalar(s)) => vector_scalar(&op, v, &s, false, return_bool).map(Value::Vector),
            (Value::Scalar(s), Value::Vector(v)) => vector_scalar(&op, v, &s, true, return_bool).map(Value::Vector),
            (Value::Vector(l), Value::Vector(r)) => {
                if is_set_operator(&op) {
                    set_operation(&op, l, r, modifier, steps.len()).map(Value::Vector)
                } else {
                    vector_vector(&op, l, r, modifier, return_bool, steps.len()).map(Value::Vector)
                }
            }
            (l, r) => Err(Error::invalid(format!(
                "binary operator {op:?} cannot apply to a {} and a {}",
                l.type_name(),
                r.type_name()
            ))),
        }
    }
}

/// The times of the steps from `start` to `end`.
pub(crate) fn step_times(start_ms: i64, end_ms: i64, step_ms: i64) -> Result<Vec<i64>> {
    if step_ms <= 0 {
        return Err(Error::invalid(
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if end_ms < start_ms {
        return Err(Error::invalid("end timestamp must not be before start time"));
    }
    let count = (end_ms as i128 - start_ms as i128) / step_ms as i128 + 1;
    if count > MAX_STEPS as i128 {
        return Err(Error::invalid(format!(
            "exceeded maximum resolution of {MAX_STEPS} points per timeseries. Try decreasing the query resolution (?step=XX)"
        )));
    }
    Ok((0..count as i64).map(|i| start_ms + i * step_ms).collect())
}

fn is_comparison(op: &str) -> bool {
    matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=")
}

fn is_set_operator(op: &str) -> bool {
    matches!(op, "and" | "or" | "unless")
}

/// Arithmetic drops the metric name; comparisons keep it.
fn drops_name(op: &str) -> bool {
    // As Prometheus 2.42: `atan2` keeps the name (later versions drop it).
    matches!(op, "+" | "-" | "*" | "/" | "%" | "^")
}

/// `lhs op rhs`: the value and, for comparisons, whether it holds (the value is then `lhs`).
fn elem_binop(op: &str, lhs: f64, rhs: f64) -> Result<(f64, bool)> {
    Ok(match op {
        "+" => (lhs + rhs, true),
        "-" => (lhs - rhs, true),
        "*" => (lhs * rhs, true),
        "/" => (lhs / rhs, true),
        "%" => (lhs % rhs, true),
        "^" => (lhs.powf(rhs), true),
        "atan2" => (lhs.atan2(rhs), true),
        "==" => (lhs, lhs == rhs),
        "!=" => (lhs, lhs != rhs),
        ">" => (lhs, lhs > rhs),
        "<" => (lhs, lhs < rhs),
        ">=" => (lhs, lhs >= rhs),
        "<=" => (lhs, lhs <= rhs),
        other => {
            return Err(Error::Unsupported {
                what: format!("the operator {other:?}"),
            });
        }
    })
}

fn vector_scalar(op: &str, vector: Vec<StepSeries>, scalar: &[f64], scalar_on_left: bool, return_bool: bool) -> Result<Vec<StepSeries>> {
    if is_set_operator(op) {
        return Err(Error::invalid(format!("set operator {op:?} needs instant vectors on both sides")));
    }
    vector
        .into_iter()
        .map(|s| {
            let labels = if drops_name(op) || return_bool {
                drop_name(&s.labels)
            } else {
                s.labels
            };
            let values = s
                .values
                .iter()
                .zip(scalar)
                .map(|(v, &k)| {
                    let Some(v) = *v else { return Ok(None) };
                    let (l, r) = if scalar_on_left { (k, v) } else { (v, k) };
                    let (mut value, keep) = elem_binop(op, l, r)?;
                    // A comparison keeps the vector's value, on whichever side it is.
                    if is_comparison(op) && scalar_on_left {
                        value = r;
                    }
                    Ok(if return_bool {
                        Some(f64::from(u8::from(keep)))
                    } else if keep {
                        Some(value)
                    } else {
                        None
                    })
                })
                .collect::<Result<Vec<Option<f64>>>>()?;
            Ok(StepSeries { labels, values })
        })
        .collect()
}

/// The labels two sides are matched on: those of `on(...)`, or all but `ignoring(...)` and
/// the metric name.
fn signature(labels: &[(String, String)], matching: Option<&LabelModifier>) -> Vec<(String, String)> {
    match matching {
        Some(LabelModifier::Include(on)) => labels.iter().filter(|(n, _)| on.labels.contains(n)).cloned().collect(),
        Some(LabelModifier::Exclude(ignoring)) => labels
            .iter()
            .filter(|(n, _)| n != METRIC_NAME && !ignoring.labels.contains(n))
            .cloned()
            .collect(),
        None => labels.iter().filter(|(n, _)| n != METRIC_NAME).cloned().collect(),
    }
}

/// The same series with no value at any step.
fn without_values(series: &[StepSeries], steps: usize) -> Vec<StepSeries> {
    series
        .iter()
        .map(|s| StepSeries {
            labels: s.labels.clone(),
            values: vec![None; steps],
        })
        .collect()
}

fn set_operation(
    op: &str,
    lhs: Vec<StepSeries>,
    rhs: Vec<StepSeries>,
    modifier: Option<&BinModifier>,
    steps: usize,
) -> Result<Vec<StepSeries>> {
    let matching = modifier.and_then(|m| m.matching.as_ref());
    let lhs_sigs: Vec<Vec<(String, String)>> = lhs.iter().map(|s| signature(&s.labels, matching)).collect();
    let rhs_sigs: Vec<Vec<(String, String)>> = rhs.iter().map(|s| signature(&s.labels, matching)).collect();
    // Each distinct signature gets a number once, so a step only marks numbers present
    // (rather than hashing and cloning every signature at every step).
    let mut numbers: std::collections::HashMap<&[(String, String)], usize> = std::collections::HashMap::new();
    let mut lhs_ids = Vec::with_capacity(lhs_sigs.len());
    let mut rhs_ids = Vec::with_capacity(rhs_sigs.len());
    for (sigs, ids) in [(&lhs_sigs, &mut lhs_ids), (&rhs_sigs, &mut rhs_ids)] {
        for sig in sigs {
            let next = numbers.len();
            ids.push(*numbers.entry(sig.as_slice()).or_insert(next));
        }
    }
    let mut present = vec![false; numbers.len()];
    let mark = |present: &mut Vec<bool>, series: &[StepSeries], ids: &[usize], i: usize| {
        present.fill(false);
        for (s, &id) in series.iter().zip(ids) {
            if s.values[i].is_some() {
                present[id] = true;
            }
        }
    };
    let mut out_lhs = without_values(&lhs, steps);
    let mut out_rhs = if op == "or" { without_values(&rhs, steps) } else { Vec::new() };
    for i in 0..steps {
        match op {
            "and" | "unless" => {
                mark(&mut present, &rhs, &rhs_ids, i);
                for (j, s) in lhs.iter().enumerate() {
                    if s.values[i].is_some() && present[lhs_ids[j]] == (op == "and") {
                        out_lhs[j].values[i] = s.values[i];
                    }
                }
            }
            _ => {
                mark(&mut present, &lhs, &lhs_ids, i);
                for (j, s) in lhs.iter().enumerate() {
                    out_lhs[j].values[i] = s.values[i];
                }
                for (j, s) in rhs.iter().enumerate() {
                    if s.values[i].is_some() && !present[rhs_ids[j]] {
                        out_rhs[j].values[i] = s.values[i];
                    }
                }
            }
        }
    }
    out_lhs.extend(out_rhs);
    Ok(out_lhs)
}

fn vector_vector(
    op: &str,
    lhs: Vec<StepSeries>,
    rhs: Vec<StepSeries>,
    modifier: Option<&BinModifier>,
    return_bool: bool,
    steps: usize,
) -> Result<Vec<StepSeries>> {
    let card = modifier.map(|m| m.card.clone()).unwrap_or(VectorMatchCardinality::OneToOne);
    let matching = modifier.and_then(|m| m.matching.as_ref());
    let (include, swapped) = match &card {
        VectorMatchCardinality::OneToOne => (Vec::new(), false),
        VectorMatchCardinality::ManyToOne(labels) => (labels.labels.clone(), false),
        VectorMatchCardinality::OneToMany(labels) => (labels.labels.clone(), true),
        VectorMatchCardinality::ManyToMany => return Err(Error::invalid(format!("operator {op:?} cannot use many-to-many matching"))),
    };
    // The "many" side is walked; the "one" side is looked up by signature.
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let many_sigs: Vec<Vec<(String, String)>> = many.iter().map(|s| signature(&s.labels, matching)).collect();
    let one_sigs: Vec<Vec<(String, String)>> = one.iter().map(|s| signature(&s.labels, matching)).collect();
    let mut outputs: FxHashMap<Labels, usize> = FxHashMap::default();
    let mut out: Vec<StepSeries> = Vec::new();
    // The result labels of each (many, one) pair, made once.
    let mut result_labels: FxHashMap<(usize, usize), Labels> = FxHashMap::default();
    for i in 0..steps {
        let mut one_at: FxHashMap<&[(String, String)], usize> = FxHashMap::default();
        for (j, s) in one.iter().enumerate() {
            if s.values[i].is_none() {
                continue;
            }
            if let Some(&other) = one_at.get(one_sigs[j].as_slice()) {
                let side = if swapped { "left" } else { "right" };
                return Err(Error::QueryExecution {
                    reason: format!(
                        "found duplicate series for the match group {} on the {side} hand-side of the operation: [{}, {}]; many-to-many matching not allowed: matching labels must be unique on one side",
                        labels_text(&one_sigs[j]),
                        labels_text(&one[other].labels),
                        labels_text(&s.labels)
                    ),
                });
            }
            one_at.insert(one_sigs[j].as_slice(), j);
        }
        let mut matched_once: FxHashMap<&[(String, String)], usize> = FxHashMap::default();
        let mut written: std::collections::HashSet<usize> = std::collections::HashSet::new();
        for (j, s) in many.iter().enumerate() {
            let Some(mine) = s.values[i] else { continue };
            let Some(&k) = one_at.get(many_sigs[j].as_slice()) else { continue };
            if matches!(card, VectorMatchCardinality::OneToOne) {
                if let Some(&previous) = matched_once.get(many_sigs[j].as_slice()) {
                    return Err(Error::QueryExecution {
                        reason: format!(
                            "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right); {} and {} match {}",
                            labels_text(&many[previous].labels),
                            labels_text(&s.labels),
                            labels_text(&many_sigs[j])
                        ),
                    });
                }
                matched_once.insert(many_sigs[j].as_slice(), j);
            }
            let theirs = one[k].values[i].unwrap_or(f64::NAN);
            let (l, r) = if swapped { (theirs, mine) } else { (mine, theirs) };
            let (value, keep) = elem_binop(op, l, r)?;
            let value = if return_bool {
                f64::from(u8::from(keep))
            } else if keep {
                value
            } else {
                continue;
            };
            let labels = result_labels
                .entry((j, k))
                .or_insert_with(|| result_metric(&s.labels, &one[k].labels, op, return_bool, &card, matching, &include))
                .clone();
            let at = *outputs.entry(labels.clone()).or_insert_with(|| {
                out.push(StepSeries {
                    labels,
                    values: vec![None; steps],
                });
                out.len() - 1
            });
            if !written.insert(at) {
                return Err(Error::QueryExecution {
                    reason: format!(
                        "multiple matches for labels: grouping labels must ensure unique matches ({})",
                        labels_text(&out[at].labels)
                    ),
                });
            }
            out[at].values[i] = Some(value);
        }
    }
    Ok(out)
}

fn result_metric(
    many: &Labels,
    one: &Labels,
    op: &str,
    return_bool: bool,
    card: &VectorMatchCardinality,
    matching: Option<&LabelModifier>,
    include: &[String],
) -> Labels {
    let mut labels: Vec<(String, String)> = many.as_ref().clone();
    if drops_name(op) || return_bool {
        labels.retain(|(n, _)| n != METRIC_NAME);
    }
    if matches!(card, VectorMatchCardinality::OneToOne) {
        match matching {
            Some(LabelModifier::Include(on)) => labels.retain(|(n, _)| on.labels.contains(n)),
            Some(LabelModifier::Exclude(ignoring)) => labels.retain(|(n, _)| !ignoring.labels.contains(n)),
            None => {}
        }
    }
    for name in include {
        labels.retain(|(n, _)| n != name);
        if let Some(v) = label(one, name)
            && !v.is_empty()
        {
            labels.push((name.clone(), v.to_string()));
        }
    }
    labels.sort();
    Arc::new(labels)
}

/// The parameter of an aggregation.
enum Param {
    Number(Vec<f64>),
    Label(String),
}

/// The group labels of a series under `by`/`without`: the labels `on`/`ignoring` would
/// match on, and none without a modifier.
fn group_labels(labels: &[(String, String)], modifier: &Option<LabelModifier>) -> Labels {
    Arc::new(match modifier {
        None => Vec::new(),
        Some(m) => signature(labels, Some(m)),
    })
}

fn aggregate(
    op: &str,
    param: Option<Param>,
    modifier: &Option<LabelModifier>,
    input: Vec<StepSeries>,
    steps: usize,
) -> Result<Vec<StepSeries>> {
    let groups_of: Vec<Labels> = input.iter().map(|s| group_labels(&s.labels, modifier)).collect();
    let mut group_index: FxHashMap<Labels, usize> = FxHashMap::default();
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut group_keys: Vec<Labels> = Vec::new();
    for (i, g) in groups_of.iter().enumerate() {
        let at = *group_index.entry(g.clone()).or_insert_with(|| {
            group_keys.push(g.clone());
            members.push(Vec::new());
            members.len() - 1
        });
        members[at].push(i);
    }
    match op {
        "topk" | "bottomk" => {
            let Some(Param::Number(k)) = param else {
                return Err(Error::invalid(format!("{op} needs a number of series")));
            };
            let mut out = without_values(&input, steps);
            // At one step, the order Prometheus answers in: groups as first seen, each
            // group's series by rank (an instant topk is not sorted by labels).
            let mut ranked: Vec<usize> = Vec::new();
            for i in 0..steps {
                let k = k[i];
                if k.is_nan() {
                    return Err(Error::invalid(format!("parameter value is NaN for {op}")));
                }
                let k = k.min(9.0e18) as i64;
                if k < 1 {
                    continue;
                }
                for group in &members {
                    let mut present: Vec<(usize, f64)> = group.iter().filter_map(|&s| input[s].values[i].map(|v| (s, v))).collect();
                    // NaN ranks last either way.
                    present.sort_by(|a, b| {
                        let order = match (a.1.is_nan(), b.1.is_nan()) {
                            (true, true) => std::cmp::Ordering::Equal,
                            (true, false) => std::cmp::Ordering::Greater,
                            (false, true) => std::cmp::Ordering::Less,
                            (false, false) if op == "topk" => b.1.total_cmp(&a.1),
                            (false, false) => a.1.total_cmp(&b.1),
                        };
                        order.then(a.0.cmp(&b.0))
                    });
                    for &(s, v) in present.iter().take(k as usize) {
                        out[s].values[i] = Some(v);
                        ranked.push(s);
                    }
                }
            }
            if steps == 1 {
                return Ok(ranked.into_iter().map(|s| out[s].clone()).collect());
            }
            Ok(out)
        }
        "count_values" => {
            let Some(Param::Label(name)) = param else {
                return Err(Error::invalid("count_values needs a label name"));
            };
            let mut outputs: FxHashMap<Labels, usize> = FxHashMap::default();
            let mut out: Vec<StepSeries> = Vec::new();
            for i in 0..steps {
                for (g, group) in members.iter().enumerate() {
                    for &s in group {
                        let Some(v) = input[s].values[i] else { continue };
                        let mut labels: Vec<(String, String)> = group_keys[g].iter().filter(|(n, _)| *n != name).cloned().collect();
                        labels.push((name.clone(), super::format_value(v)));
                        labels.sort();
                        let labels = Arc::new(labels);
                        let at = *outputs.entry(labels.clone()).or_insert_with(|| {
                            out.push(StepSeries {
                                labels,
                                values: vec![None; steps],
                            });
                            out.len() - 1
                        });
                        let slot = &mut out[at].values[i];
                        *slot = Some(slot.unwrap_or(0.0) + 1.0);
                    }
                }
            }
            Ok(out)
        }
        _ => {
            let quantile = match (&param, op) {
                (Some(Param::Number(q)), "quantile") => Some(q),
                (_, "quantile") => return Err(Error::invalid("quantile needs a φ parameter")),
                _ => None,
            };
            let mut out: Vec<StepSeries> = group_keys
                .iter()
                .map(|g| StepSeries {
                    labels: g.clone(),
                    values: vec![None; steps],
                })
                .collect();
            let mut values: Vec<f64> = Vec::new();
            for i in 0..steps {
                for (g, group) in members.iter().enumerate() {
                    values.clear();
                    values.extend(group.iter().filter_map(|&s| input[s].values[i]));
                    if values.is_empty() {
                        continue;
                    }
                    out[g].values[i] = Some(match op {
                        "sum" => values.iter().sum(),
                        "avg" => functions::incremental_mean(&values[..]),
                        "count" => values.len() as f64,
                        "group" => 1.0,
                        "min" => values
                            .iter()
                            .copied()
                            .fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m }),
                        "max" => values
                            .iter()
                            .copied()
                            .fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m }),
                        "stddev" => functions::variance(&values[..]).sqrt(),
                        "stdvar" => functions::variance(&values[..]),
                        "quantile" => functions::quantile(quantile.map_or(f64::NAN, |q| q[i]), &mut values),
                        other => {
                            return Err(Error::Unsupported {
                                what: format!("the aggregation {other}"),
                            });
                        }
                    });
                }
            }
            Ok(out)
        }
    }
}

/// The labels an `absent(...)` result carries: the equality matchers of a selector
/// argument (each name once), without the metric name.
pub(crate) fn absent_labels(expr: &Expr) -> Labels {
    match expr {
        Expr::VectorSelector(vs) => absent_labels_of(&vs.matchers.matchers),
        Expr::MatrixSelector(ms) => absent_labels_of(&ms.vs.matchers.matchers),
        _ => Arc::new(Vec::new()),
    }
}

/// The labels `absent` gives for a selector's matchers: each equality matcher's, except
/// for a name that also appears in another matcher (as Prometheus 2.42 does).
pub(crate) fn absent_labels_of(matchers: &[promql_parser::label::Matcher]) -> Labels {
    let mut labels: Vec<(String, String)> = Vec::new();
    let mut dropped: Vec<&str> = Vec::new();
    for m in matchers.iter().filter(|m| m.name != METRIC_NAME) {
        if m.op == MatchOp::Equal && !labels.iter().any(|(n, _)| *n == m.name) {
            labels.push((m.name.clone(), m.value.clone()));
        } else {
            dropped.push(&m.name);
        }
    }
    labels.retain(|(n, _)| !dropped.contains(&n.as_str()));
    labels.sort();
    Arc::new(labels)
}
