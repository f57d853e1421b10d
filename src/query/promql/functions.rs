//! PromQL functions, computed as Prometheus 2.x computes them (the extrapolation of
//! `rate`, the incremental mean of `avg_over_time`, the bucket interpolation of
//! `histogram_quantile`).

use super::eval::{Evaluator, RangeVector, StepSeries, Value, absent_labels, drop_name};
use super::{Labels, label};
use crate::error::{Error, Result};
use promql_parser::parser::{Call, Expr};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// The functions annals evaluates.
pub const SUPPORTED: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "exp",
    "floor",
    "histogram_quantile",
    "hour",
    "idelta",
    "increase",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "vector",
    "year",
];

/// The mean as Prometheus 2.x computes it: incrementally, so large values do not overflow.
pub(crate) fn incremental_mean<'a>(values: impl IntoIterator<Item = &'a f64>) -> f64 {
    let mut mean: f64 = 0.0;
    let mut count = 0.0;
    for &v in values {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) == (v > 0.0) {
                continue;
            }
            if !v.is_infinite() && !v.is_nan() {
                continue;
            }
        }
        mean += v / count - mean / count;
    }
    mean
}

/// The population variance, by Welford's method as Prometheus computes it.
pub(crate) fn variance<'a>(values: impl IntoIterator<Item = &'a f64>) -> f64 {
    let (mut count, mut mean, mut aux) = (0.0, 0.0, 0.0);
    for &v in values {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        aux += delta * (v - mean);
    }
    aux / count
}

/// The φ-quantile of `values` (sorted in place), interpolating between neighbours.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// Least-squares slope (per second) and intercept at `intercept_ms`.
fn linear_regression(points: &[(i64, f64)], intercept_ms: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut sum_y, mut sum_xy, mut sum_x2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let constant_y = points.iter().all(|p| p.1 == points[0].1);
    for &(t, v) in points {
        let x = (t as f64 - intercept_ms as f64) / 1000.0;
        n += 1.0;
        sum_x += x;
        sum_y += v;
        sum_xy += x * v;
        sum_x2 += x * x;
    }
    if constant_y {
        return (0.0, points.first().map_or(f64::NAN, |p| p.1));
    }
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    let intercept = sum_y / n - slope * sum_x / n;
    (slope, intercept)
}

/// `rate`, `increase` and `delta`: the change over the window, extrapolated to its edges
/// as Prometheus does (not past half a sample interval, nor below zero for counters).
fn extrapolated_rate(points: &[(i64, f64)], window_start: i64, window_end: i64, is_counter: bool, is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first_t, first_v) = points[0];
    let (last_t, last_v) = points[points.len() - 1];
    let mut result = last_v - first_v;
    if is_counter {
        let mut previous = first_v;
        for &(_, v) in &points[1..] {
            if v < previous {
                result += previous;
            }
            previous = v;
        }
    }
    let seconds = |from: i64, to: i64| (to as f64 - from as f64) / 1000.0;
    let mut to_start = seconds(window_start, first_t);
    let to_end = seconds(last_t, window_end);
    let sampled = seconds(first_t, last_t);
    let average_interval = sampled / (points.len() - 1) as f64;
    if is_counter && result > 0.0 && first_v >= 0.0 {
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average_interval * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold { to_start } else { average_interval / 2.0 };
    interval += if to_end < threshold { to_end } else { average_interval / 2.0 };
    let mut factor = interval / sampled;
    if is_rate {
        factor /= seconds(window_start, window_end);
    }
    Some(result * factor)
}

fn instant_delta(points: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    let [.., (t0, v0), (t1, v1)] = points else { return None };
    let change = if is_rate && v1 < v0 { *v1 } else { v1 - v0 };
    if !is_rate {
        return Some(change);
    }
    let seconds = (*t1 as f64 - *t0 as f64) / 1000.0;
    (seconds != 0.0).then_some(change / seconds)
}

fn check_args(call: &Call, min: usize, max: usize) -> Result<()> {
    let n = call.args.args.len();
    if n < min || n > max {
        return Err(Error::invalid(format!(
            "function {:?} takes {} argument(s), got {n}",
            call.func.name,
            if min == max { min.to_string() } else { format!("{min} to {max}") }
        )));
    }
    Ok(())
}

fn arg(call: &Call, i: usize) -> Result<&Expr> {
    call.args
        .args
        .get(i)
        .map(|b| b.as_ref())
        .ok_or_else(|| Error::invalid(format!("function {:?} is missing argument {}", call.func.name, i + 1)))
}

/// A part of the UTC date of `seconds` since the epoch, as Prometheus' date functions give
/// it (the seconds truncated to a whole second; Sunday is day 0 of the week).
fn date_part(name: &str, seconds: f64) -> f64 {
    use chrono::{Datelike, Timelike};
    if !seconds.is_finite() {
        return f64::NAN;
    }
    let Some(t) = chrono::DateTime::from_timestamp(seconds.trunc() as i64, 0) else {
        return f64::NAN;
    };
    f64::from(match name {
        "minute" => t.minute(),
        "hour" => t.hour(),
        "day_of_week" => t.weekday().num_days_from_sunday(),
        "day_of_month" => t.day(),
        "day_of_year" => t.ordinal(),
        "days_in_month" => {
            let (year, month) = if t.month() == 12 {
                (t.year() + 1, 1)
            } else {
                (t.year(), t.month() + 1)
            };
            let first_of_next = chrono::NaiveDate::from_ymd_opt(year, month, 1);
            match first_of_next.and_then(|d| d.pred_opt()) {
                Some(last) => last.day(),
                None => return f64::NAN,
            }
        }
        "month" => t.month(),
        _ => return f64::from(t.year()),
    })
}

/// Go's `math.Max`: NaN when either is NaN.
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) }
}

/// Go's `math.Min`: NaN when either is NaN.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) }
}

/// Applies `f` to the window of every series at every step.
fn over_windows(m: &RangeVector, keep_name: bool, mut f: impl FnMut(&[(i64, f64)], usize) -> Option<f64>) -> Vec<StepSeries> {
    (0..m.series.len())
        .map(|s| StepSeries {
            labels: if keep_name {
                m.series[s].labels.clone()
            } else {
                drop_name(&m.series[s].labels)
            },
            values: (0..m.ends.len())
                .map(|i| {
                    let window = m.window(s, i);
                    if window.is_empty() { None } else { f(window, i) }
                })
                .collect(),
        })
        .collect()
}

/// Applies `f` to every value, dropping the metric name.
fn map_values(series: Vec<StepSeries>, f: impl Fn(f64, usize) -> f64) -> Vec<StepSeries> {
    series
        .into_iter()
        .map(|s| StepSeries {
            labels: drop_name(&s.labels),
            values: s.values.iter().enumerate().map(|(i, v)| v.map(|v| f(v, i))).collect(),
        })
        .collect()
}

fn compile_anchored(pattern: &str) -> Result<regex::Regex> {
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| Error::invalid(format!("invalid regular expression {pattern:?}: {e}")))
}

fn string_arg(ev: &mut Evaluator<'_, '_>, call: &Call, i: usize, steps: &[i64]) -> Result<String> {
    match ev.eval(arg(call, i)?, steps)? {
        Value::String(s) => Ok(s),
        _ => Err(Error::invalid(format!("argument {} of {} must be a string", i + 1, call.func.name))),
    }
}

fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_') && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn set_label(labels: &Labels, name: &str, value: &str) -> Labels {
    let mut out: Vec<(String, String)> = labels.iter().filter(|(n, _)| n != name).cloned().collect();
    if !value.is_empty() {
        out.push((name.to_string(), value.to_string()));
        out.sort();
    }
    Arc::new(out)
}

/// Evaluates a function call at every step.
pub(crate) fn call(ev: &mut Evaluator<'_, '_>, call: &Call, steps: &[i64]) -> Result<Value> {
    let name = call.func.name;
    let n = steps.len();
    let vector = |series: Vec<StepSeries>| Ok(Value::Vector(series));
    match name {
        "time" => Ok(Value::Scalar(steps.iter().map(|&t| t as f64 / 1000.0).collect())),
        "pi" => Ok(Value::Scalar(vec![std::f64::consts::PI; n])),
        "vector" => {
            check_args(call, 1, 1)?;
            let values = ev.scalar_arg(arg(call, 0)?, steps, "the argument of vector")?;
            vector(vec![StepSeries {
                labels: Arc::new(Vec::new()),
                values: values.into_iter().map(Some).collect(),
            }])
        }
        "scalar" => {
            check_args(call, 1, 1)?;
            let series = ev.vector_arg(arg(call, 0)?, steps, "the argument of scalar")?;
            Ok(Value::Scalar(
                (0..n)
                    .map(|i| {
                        let mut present = series.iter().filter_map(|s| s.values[i]);
                        match (present.next(), present.next()) {
                            (Some(v), None) => v,
                            _ => f64::NAN,
                        }
                    })
                    .collect(),
            ))
        }
        "timestamp" => {
            check_args(call, 1, 1)?;
            let mut argument = arg(call, 0)?;
            while let Expr::Paren(inner) = argument {
                argument = &inner.expr;
            }
            let series = match argument {
                Expr::VectorSelector(vs) => ev.instant_selector(vs, steps, true)?,
                other => {
                    let series = ev.vector_arg(other, steps, "the argument of timestamp")?;
                    map_values(series, |_, i| steps[i] as f64 / 1000.0)
                }
            };
            vector(
                series
                    .into_iter()
                    .map(|s| StepSeries {
                        labels: drop_name(&s.labels),
                        values: s.values,
                    })
                    .collect(),
            )
        }
        "minute" | "hour" | "day_of_week" | "day_of_month" | "day_of_year" | "days_in_month" | "month" | "year" => {
            check_args(call, 0, 1)?;
            // Without an argument, the evaluation time (`vector(time())`).
            let series = match call.args.args.first() {
                None => vec![StepSeries {
                    labels: Arc::new(Vec::new()),
                    values: steps.iter().map(|&t| Some(t as f64 / 1000.0)).collect(),
                }],
                Some(argument) => ev.vector_arg(argument, steps, &format!("the argument of {name}"))?,
            };
            vector(map_values(series, |v, _| date_part(name, v)))
        }
        "abs" | "ceil" | "floor" | "sqrt" | "exp" | "ln" | "log2" | "log10" | "sgn" | "sin" | "cos" | "tan" | "asin" | "acos" | "atan"
        | "sinh" | "cosh" | "tanh" | "asinh" | "acosh" | "atanh" | "deg" | "rad" => {
            check_args(call, 1, 1)?;
            let series = ev.vector_arg(arg(call, 0)?, steps, &format!("the argument of {name}"))?;
            let f: fn(f64) -> f64 = match name {
                "abs" => f64::abs,
                "ceil" => f64::ceil,
                "floor" => f64::floor,
                "sqrt" => f64::sqrt,
                "exp" => f64::exp,
                "ln" => f64::ln,
                "log2" => f64::log2,
                "log10" => f64::log10,
                "sgn" => |v: f64| {
                    if v > 0.0 {
                        1.0
                    } else if v < 0.0 {
                        -1.0
                    } else {
                        v
                    }
                },
                "sin" => f64::sin,
                "cos" => f64::cos,
                "tan" => f64::tan,
                "asin" => f64::asin,
                "acos" => f64::acos,
                "atan" => f64::atan,
                "sinh" => f64::sinh,
                "cosh" => f64::cosh,
                "tanh" => f64::tanh,
                "asinh" => f64::asinh,
                "acosh" => f64::acosh,
                "atanh" => f64::atanh,
                "deg" => f64::to_degrees,
                _ => f64::to_radians,
            };
            vector(map_values(series, |v, _| f(v)))
        }
        "round" => {
            check_args(call, 1, 2)?;
            let series = ev.vector_arg(arg(call, 0)?, steps, "the argument of round")?;
            let to = match call.args.args.get(1) {
                Some(e) => ev.scalar_arg(e, steps, "the nearest of round")?,
                None => vec![1.0; n],
            };
            // As Prometheus: floor(v * (1/to) + 0.5) / (1/to), ties rounded up.
            vector(map_values(series, |v, i| {
                let inverse = 1.0 / to[i];
                (v * inverse + 0.5).floor() / inverse
            }))
        }
        "clamp" | "clamp_min" | "clamp_max" => {
            check_args(call, if name == "clamp" { 3 } else { 2 }, if name == "clamp" { 3 } else { 2 })?;
            let series = ev.vector_arg(arg(call, 0)?, steps, &format!("the argument of {name}"))?;
            let a = ev.scalar_arg(arg(call, 1)?, steps, &format!("the bound of {name}"))?;
            let b = match name {
                "clamp" => ev.scalar_arg(arg(call, 2)?, steps, "the maximum of clamp")?,
                _ => vec![f64::NAN; n],
            };
            if name == "clamp" {
                // max < min yields nothing at that step.
                // Go's math.Max and math.Min: a NaN bound makes NaN.
                let series = map_values(series, |v, i| go_min(b[i], go_max(a[i], v)));
                return vector(
                    series
                        .into_iter()
                        .map(|s| StepSeries {
                            values: s
                                .values
                                .iter()
                                .enumerate()
                                .map(|(i, v)| if b[i] < a[i] { None } else { *v })
                                .collect(),
                            labels: s.labels,
                        })
                        .collect(),
                );
            }
            vector(map_values(series, |v, i| {
                if name == "clamp_min" { go_max(a[i], v) } else { go_min(a[i], v) }
            }))
        }
        "sort" | "sort_desc" => {
            check_args(call, 1, 1)?;
            let mut series = ev.vector_arg(arg(call, 0)?, steps, &format!("the argument of {name}"))?;
            if n == 1 {
                // Only an instant query's order is meaningful; NaN sorts last.
                series.sort_by(|a, b| {
                    let (x, y) = (a.values[0].unwrap_or(f64::NAN), b.values[0].unwrap_or(f64::NAN));
                    match (x.is_nan(), y.is_nan()) {
                        (true, true) => std::cmp::Ordering::Equal,
                        (true, false) => std::cmp::Ordering::Greater,
                        (false, true) => std::cmp::Ordering::Less,
                        _ if name == "sort" => x.total_cmp(&y),
                        _ => y.total_cmp(&x),
                    }
                });
            }
            vector(series)
        }
        "label_replace" => {
            check_args(call, 5, 5)?;
            let series = ev.vector_arg(arg(call, 0)?, steps, "the argument of label_replace")?;
            let dst = string_arg(ev, call, 1, steps)?;
            let replacement = string_arg(ev, call, 2, steps)?;
            let src = string_arg(ev, call, 3, steps)?;
            let pattern = string_arg(ev, call, 4, steps)?;
            let re = compile_anchored(&pattern)?;
            if !valid_label_name(&dst) {
                return Err(Error::invalid(format!("invalid destination label name in label_replace(): {dst}")));
            }
            vector(
                series
                    .into_iter()
                    .map(|s| {
                        let source = label(&s.labels, &src).unwrap_or("");
                        let labels = match re.captures(source) {
                            Some(caps) => {
                                let mut value = String::new();
                                caps.expand(&replacement, &mut value);
                                set_label(&s.labels, &dst, &value)
                            }
                            None => s.labels.clone(),
                        };
                        StepSeries { labels, values: s.values }
                    })
                    .collect(),
            )
        }
        "label_join" => {
            if call.args.args.len() < 3 {
                return Err(Error::invalid(
                    "label_join takes a vector, a destination, a separator and source labels",
                ));
            }
            let series = ev.vector_arg(arg(call, 0)?, steps, "the argument of label_join")?;
            let dst = string_arg(ev, call, 1, steps)?;
            let separator = string_arg(ev, call, 2, steps)?;
            let sources = (3..call.args.args.len())
                .map(|i| string_arg(ev, call, i, steps))
                .collect::<Result<Vec<String>>>()?;
            if !valid_label_name(&dst) {
                return Err(Error::invalid(format!("invalid destination label name in label_join(): {dst}")));
            }
            vector(
                series
                    .into_iter()
                    .map(|s| {
                        let joined: Vec<&str> = sources.iter().map(|l| label(&s.labels, l).unwrap_or("")).collect();
                        StepSeries {
                            labels: set_label(&s.labels, &dst, &joined.join(&separator)),
                            values: s.values,
                        }
                    })
                    .collect(),
            )
        }
        "absent" => {
            check_args(call, 1, 1)?;
            let series = ev.vector_arg(arg(call, 0)?, steps, "the argument of absent")?;
            let values = (0..n)
                .map(|i| (!series.iter().any(|s| s.values[i].is_some())).then_some(1.0))
                .collect();
            vector(vec![StepSeries {
                labels: absent_labels(arg(call, 0)?),
                values,
            }])
        }
        "absent_over_time" => {
            check_args(call, 1, 1)?;
            let m = ev.matrix_arg(arg(call, 0)?, steps, "the argument of absent_over_time")?;
            let values = (0..n)
                .map(|i| (!(0..m.series.len()).any(|s| !m.window(s, i).is_empty())).then_some(1.0))
                .collect();
            vector(vec![StepSeries {
                labels: absent_labels(arg(call, 0)?),
                values,
            }])
        }
        "histogram_quantile" => {
            check_args(call, 2, 2)?;
            let q = ev.scalar_arg(arg(call, 0)?, steps, "the φ of histogram_quantile")?;
            let series = ev.vector_arg(arg(call, 1)?, steps, "the buckets of histogram_quantile")?;
            vector(histogram_quantile(&q, series, n)?)
        }
        "rate" | "increase" | "delta" | "irate" | "idelta" | "deriv" | "changes" | "resets" | "avg_over_time" | "min_over_time"
        | "max_over_time" | "sum_over_time" | "count_over_time" | "last_over_time" | "present_over_time" | "stddev_over_time"
        | "stdvar_over_time" => {
            check_args(call, 1, 1)?;
            let m = ev.matrix_arg(arg(call, 0)?, steps, &format!("the argument of {name}"))?;
            let range = m.range_ms;
            let ends = m.ends.clone();
            vector(over_windows(&m, name == "last_over_time", |w, i| match name {
                "rate" => extrapolated_rate(w, ends[i].saturating_sub(range), ends[i], true, true),
                "increase" => extrapolated_rate(w, ends[i].saturating_sub(range), ends[i], true, false),
                "delta" => extrapolated_rate(w, ends[i].saturating_sub(range), ends[i], false, false),
                "irate" => instant_delta(w, true),
                "idelta" => instant_delta(w, false),
                "deriv" => (w.len() >= 2).then(|| linear_regression(w, w[0].0).0),
                "changes" => Some(
                    w.windows(2)
                        .filter(|p| p[0].1 != p[1].1 && !(p[0].1.is_nan() && p[1].1.is_nan()))
                        .count() as f64,
                ),
                "resets" => Some(w.windows(2).filter(|p| p[1].1 < p[0].1).count() as f64),
                "avg_over_time" => Some(incremental_mean(w.iter().map(|p| &p.1))),
                "min_over_time" => Some(w.iter().map(|p| p.1).fold(f64::NAN, |m, v| if m.is_nan() || v < m { v } else { m })),
                "max_over_time" => Some(w.iter().map(|p| p.1).fold(f64::NAN, |m, v| if m.is_nan() || v > m { v } else { m })),
                "sum_over_time" => Some(w.iter().map(|p| p.1).sum()),
                "count_over_time" => Some(w.len() as f64),
                "last_over_time" => w.last().map(|p| p.1),
                "present_over_time" => Some(1.0),
                "stddev_over_time" => Some(variance(w.iter().map(|p| &p.1)).sqrt()),
                _ => Some(variance(w.iter().map(|p| &p.1))),
            }))
        }
        "quantile_over_time" => {
            check_args(call, 2, 2)?;
            let q = ev.scalar_arg(arg(call, 0)?, steps, "the φ of quantile_over_time")?;
            let m = ev.matrix_arg(arg(call, 1)?, steps, "the argument of quantile_over_time")?;
            let mut values = Vec::new();
            vector(over_windows(&m, false, |w, i| {
                values.clear();
                values.extend(w.iter().map(|p| p.1));
                Some(quantile(q[i], &mut values))
            }))
        }
        "predict_linear" => {
            check_args(call, 2, 2)?;
            let m = ev.matrix_arg(arg(call, 0)?, steps, "the argument of predict_linear")?;
            let seconds = ev.scalar_arg(arg(call, 1)?, steps, "the duration of predict_linear")?;
            // The intercept is at the evaluation time, not at the window's end (they differ
            // under `@` and `offset`), as Prometheus computes it.
            vector(over_windows(&m, false, |w, i| {
                (w.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(w, steps[i]);
                    slope * seconds[i] + intercept
                })
            }))
        }
        other => Err(Error::Unsupported {
            what: format!("the function {other}()"),
        }),
    }
}

/// `histogram_quantile(φ, buckets)`: the buckets of each histogram (series equal but for
/// `le`), interpolated linearly within the bucket holding the rank.
/// Buckets are grouped by their labels but `le`, the metric name included, so buckets of
/// two metrics never mix; two groups equal once the name is dropped are an error where
/// both have a value, as in Prometheus.
fn histogram_quantile(q: &[f64], series: Vec<StepSeries>, steps: usize) -> Result<Vec<StepSeries>> {
    let mut groups: FxHashMap<Labels, Vec<(f64, usize)>> = FxHashMap::default();
    let mut order: Vec<Labels> = Vec::new();
    for (i, s) in series.iter().enumerate() {
        let Some(upper) = label(&s.labels, "le").and_then(parse_bucket_bound) else {
            continue;
        };
        let key: Labels = Arc::new(s.labels.iter().filter(|(n, _)| n != "le").cloned().collect());
        groups
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push((upper, i));
    }
    let quantiles = order
        .into_iter()
        .map(|key| {
            let members = &groups[&key];
            let values = (0..steps)
                .map(|i| {
                    let mut buckets: Vec<(f64, f64)> = members
                        .iter()
                        .filter_map(|&(upper, s)| series[s].values[i].map(|c| (upper, c)))
                        .collect();
                    (!buckets.is_empty()).then(|| bucket_quantile(q[i], &mut buckets))
                })
                .collect();
            StepSeries {
                labels: drop_name(&key),
                values,
            }
        })
        .collect();
    super::eval::merge_same_labels(quantiles)
}

fn parse_bucket_bound(text: &str) -> Option<f64> {
    match text.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        t => t.parse().ok(),
    }
}

fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Buckets with the same bound add up.
    buckets.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1 += later.1;
            true
        } else {
            false
        }
    });
    // Counts must not fall: a lower count takes the one before it.
    let mut max = f64::NEG_INFINITY;
    for b in buckets.iter_mut() {
        if b.1 < max {
            b.1 = max;
        } else {
            max = b.1;
        }
    }
    if buckets.len() < 2 {
        return f64::NAN;
    }
    let observations = buckets[buckets.len() - 1].1;
    if observations == 0.0 || observations.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let b = buckets.partition_point(|bucket| bucket.1 < rank);
    if b == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if b == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (mut start, end, mut count) = (0.0, buckets[b].0, buckets[b].1);
    if b > 0 {
        start = buckets[b - 1].0;
        count -= buckets[b - 1].1;
        rank -= buckets[b - 1].1;
    }
    start + (end - start) * (rank / count)
}
