//! Runs Prometheus' own PromQL test files (`promql/testdata/*.test` of Prometheus 2.42)
//! against annals: each `load` is written to a fresh store, each `eval instant` is asked
//! of `Snapshot::promql_instant` and compared as Prometheus' test runner compares (the
//! same series, values within 1e-6 relative, order only for `eval_ordered`; `eval_fail`
//! must fail). Prints passed/total per file and in all.
//!
//!     cargo run --release --example promqltest -- FILE.test...
//!
//! `scripts/promqltest.sh` fetches the files (they are Prometheus', not committed here).
//! Native histograms (`{{...}}`) and staleness markers (`stale`) cannot be stored in
//! annals: a `load` line holding them is skipped, and the evals that need it fail.

use annals::query::promql::{PromOptions, PromValue};
use annals::{Batch, Engine, FieldValue, Options, SeriesKey, SeriesKind};
use promql_parser::label::MatchOp;
use promql_parser::parser::Expr;
use std::collections::BTreeMap;
use std::process::ExitCode;

/// Labels as the test files write them, sorted, `__name__` included.
type Labels = Vec<(String, String)>;

/// What an `eval` expects.
#[derive(Debug)]
enum Expected {
    Scalar(f64),
    Samples(Vec<(Labels, f64)>),
}

#[derive(Debug)]
struct Eval {
    line: usize,
    query: String,
    at_ms: i64,
    fail: bool,
    ordered: bool,
    expected: Expected,
}

#[derive(Debug)]
enum Command {
    Clear,
    Load {
        step_ms: i64,
        series: Vec<(Labels, Vec<Option<f64>>)>,
        skipped: usize,
    },
    Eval(Eval),
}

fn parse_duration_ms(text: &str) -> Result<i64, String> {
    // The parser refuses a zero duration; the test files write `at 0m`.
    if text.trim().trim_start_matches('0').chars().all(|c| c.is_ascii_alphabetic()) {
        return Ok(0);
    }
    promql_parser::util::parse_duration(text.trim())
        .map(|d| d.as_millis() as i64)
        .map_err(|e| format!("bad duration {text:?}: {e}"))
}

fn parse_number(text: &str) -> Option<f64> {
    let t = text.trim();
    match t {
        "Inf" | "+Inf" | "inf" | "+inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        "NaN" | "nan" => Some(f64::NAN),
        _ => {
            if let Some(hex) = t.strip_prefix("0x") {
                return i64::from_str_radix(hex, 16).ok().map(|v| v as f64);
            }
            t.parse::<f64>().ok()
        }
    }
}

/// `metric{a="b"}` into sorted labels.
fn parse_metric(text: &str) -> Result<Labels, String> {
    let expr = annals::query::promql::parse(text).map_err(|e| e.to_string())?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("{text:?} is not a series"));
    };
    let mut labels: Labels = Vec::new();
    if let Some(name) = &vs.name {
        labels.push(("__name__".into(), name.clone()));
    }
    for m in &vs.matchers.matchers {
        if m.op != MatchOp::Equal {
            return Err(format!("{text:?}: only = in a series"));
        }
        if m.name == "__name__" && vs.name.is_some() {
            continue;
        }
        labels.push((m.name.clone(), m.value.clone()));
    }
    labels.sort();
    Ok(labels)
}

/// Splits `metric{...} values` at the end of the metric.
fn split_series(line: &str) -> (&str, &str) {
    let mut depth = 0;
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        if quoted {
            match c {
                '\\' if !escaped => escaped = true,
                '"' if !escaped => quoted = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return (&line[..=i], &line[i + 1..]);
                }
            }
            c if c.is_whitespace() && depth == 0 => return (&line[..i], &line[i..]),
            _ => {}
        }
    }
    (line, "")
}

/// The values of a series description: `1 2 _ 3+2x4 5-1x2 _x3 stale`. `None` is a missing
/// sample; `Err` holds what annals cannot store.
fn parse_values(text: &str) -> Result<Vec<Option<f64>>, String> {
    let mut out = Vec::new();
    for item in text.split_whitespace() {
        if item == "_" {
            out.push(None);
            continue;
        }
        if item == "stale" {
            return Err("a staleness marker".into());
        }
        if item.starts_with("{{") {
            return Err("a native histogram".into());
        }
        if let Some((head, count)) = item.rsplit_once('x')
            && let Ok(count) = count.parse::<usize>()
        {
            if head == "_" {
                out.extend(std::iter::repeat_n(None, count));
                continue;
            }
            // `a+bxN` or `a-bxN`: the sign that is not the first character.
            let split = head.char_indices().skip(1).find(|&(_, c)| c == '+' || c == '-').map(|(i, _)| i);
            let (start, step) = match split {
                Some(i) => {
                    let start = parse_number(&head[..i]).ok_or_else(|| format!("bad value {item:?}"))?;
                    let step = parse_number(&head[i + 1..]).ok_or_else(|| format!("bad value {item:?}"))?;
                    (start, if &head[i..=i] == "-" { -step } else { step })
                }
                None => (parse_number(head).ok_or_else(|| format!("bad value {item:?}"))?, 0.0),
            };
            for k in 0..=count {
                out.push(Some(start + step * k as f64));
            }
            continue;
        }
        out.push(Some(parse_number(item).ok_or_else(|| format!("bad value {item:?}"))?));
    }
    Ok(out)
}

fn parse_file(text: &str) -> Result<Vec<Command>, String> {
    let lines: Vec<&str> = text
        .lines()
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') { "" } else { t }
        })
        .collect();
    let mut commands = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if line.is_empty() {
            continue;
        }
        let word = line.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        if word == "clear" {
            commands.push(Command::Clear);
        } else if word == "load" {
            let step_ms = parse_duration_ms(line[4..].trim())?;
            let mut series = Vec::new();
            let mut skipped = 0;
            while i < lines.len() && !lines[i].is_empty() {
                let (metric, values) = split_series(lines[i]);
                i += 1;
                match parse_values(values) {
                    Ok(values) => series.push((parse_metric(metric)?, values)),
                    Err(_) => skipped += 1,
                }
            }
            commands.push(Command::Load { step_ms, series, skipped });
        } else if word.starts_with("eval") {
            let line_number = i;
            let (fail, ordered) = (word == "eval_fail", word == "eval_ordered");
            let rest = line[word.len()..].trim();
            let rest = rest
                .strip_prefix("instant")
                .ok_or_else(|| format!("line {line_number}: only instant evals exist"))?
                .trim();
            let (at_ms, query) = match rest.strip_prefix("at ") {
                Some(r) => {
                    let (at, query) = r.trim().split_once(char::is_whitespace).ok_or("eval without a query")?;
                    (parse_duration_ms(at)?, query.trim().to_string())
                }
                None => (0, rest.to_string()),
            };
            let mut samples = Vec::new();
            let mut scalar = None;
            while i < lines.len() && !lines[i].is_empty() {
                let expected = lines[i];
                i += 1;
                if let Some(v) = parse_number(expected) {
                    scalar = Some(v);
                    continue;
                }
                let (metric, value) = split_series(expected);
                let values = parse_values(value).unwrap_or_default();
                let labels = if metric.trim() == "{}" { Vec::new() } else { parse_metric(metric)? };
                samples.push((labels, values.first().copied().flatten().unwrap_or(f64::NAN)));
            }
            let expected = match scalar {
                Some(v) => Expected::Scalar(v),
                None => Expected::Samples(samples),
            };
            commands.push(Command::Eval(Eval {
                line: line_number,
                query,
                at_ms,
                fail,
                ordered,
                expected,
            }));
        } else {
            return Err(format!("line {i}: unknown command {line:?}"));
        }
    }
    Ok(commands)
}

/// Prometheus' test comparison: equal, both NaN, or within 1e-6 relative.
fn almost_equal(a: f64, b: f64) -> bool {
    const EPSILON: f64 = 1e-6;
    const MIN_NORMAL: f64 = f64::MIN_POSITIVE;
    if (a.is_nan() && b.is_nan()) || a == b {
        return true;
    }
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || diff < MIN_NORMAL {
        return diff < EPSILON * MIN_NORMAL;
    }
    diff / (a.abs() + b.abs()) < EPSILON
}

fn check(eval: &Eval, answer: annals::Result<PromValue>) -> Result<(), String> {
    let answer = match (answer, eval.fail) {
        (Err(_), true) => return Ok(()),
        (Ok(_), true) => return Err("expected an error".into()),
        (Err(e), false) => return Err(format!("error: {e}")),
        (Ok(a), false) => a,
    };
    match (&eval.expected, answer) {
        (Expected::Scalar(want), PromValue::Scalar { value, .. }) => {
            if almost_equal(*want, value) {
                Ok(())
            } else {
                Err(format!("scalar {value}, expected {want}"))
            }
        }
        (Expected::Samples(want), PromValue::Vector(got)) => {
            let got: Vec<(Labels, f64)> = got.into_iter().map(|s| (s.labels.as_ref().clone(), s.value)).collect();
            if got.len() != want.len() {
                return Err(format!("{} samples, expected {}", got.len(), want.len()));
            }
            if eval.ordered {
                for ((gl, gv), (wl, wv)) in got.iter().zip(want) {
                    if gl != wl || !almost_equal(*gv, *wv) {
                        return Err(format!("{gl:?} {gv} where {wl:?} {wv} was expected (ordered)"));
                    }
                }
                return Ok(());
            }
            let by_labels: BTreeMap<&Labels, f64> = got.iter().map(|(l, v)| (l, *v)).collect();
            for (labels, value) in want {
                match by_labels.get(labels) {
                    Some(v) if almost_equal(*v, *value) => {}
                    Some(v) => return Err(format!("{labels:?}: {v}, expected {value}")),
                    None => return Err(format!("{labels:?} missing")),
                }
            }
            Ok(())
        }
        (Expected::Samples(want), PromValue::Scalar { value, .. }) if want.len() == 1 && want[0].0.is_empty() => {
            if almost_equal(want[0].1, value) {
                Ok(())
            } else {
                Err(format!("scalar {value}, expected {}", want[0].1))
            }
        }
        (expected, got) => Err(format!("{} answered, {expected:?} expected", got.result_type())),
    }
}

fn run_file(path: &str) -> Result<(usize, usize, Vec<String>), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
    let commands = parse_file(&text)?;
    let mut dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut engine = Engine::open(dir.path(), Options::default()).map_err(|e| e.to_string())?;
    let (mut passed, mut total) = (0, 0);
    let mut failures = Vec::new();
    for command in commands {
        match command {
            Command::Clear => {
                engine.close().map_err(|e| e.to_string())?;
                dir = tempfile::tempdir().map_err(|e| e.to_string())?;
                engine = Engine::open(dir.path(), Options::default()).map_err(|e| e.to_string())?;
            }
            Command::Load { step_ms, series, skipped } => {
                if skipped > 0 {
                    failures.push(format!(
                        "load: {skipped} series annals cannot store (staleness markers, native histograms) skipped"
                    ));
                }
                let mut batch = Batch::new();
                for (labels, values) in series {
                    let name = labels
                        .iter()
                        .find(|(k, _)| k == "__name__")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let tags: Vec<(String, String)> = labels.into_iter().filter(|(k, _)| k != "__name__").collect();
                    let key = SeriesKey::new(SeriesKind::Metric, name, tags).map_err(|e| e.to_string())?;
                    for (i, value) in values.iter().enumerate() {
                        if let Some(v) = value {
                            let ts = (i as i64) * step_ms * 1_000_000;
                            batch
                                .add_row(&key, ts, [("value", FieldValue::F64(*v))])
                                .map_err(|e| e.to_string())?;
                        }
                    }
                }
                engine.write(&batch).map_err(|e| e.to_string())?;
            }
            Command::Eval(eval) => {
                total += 1;
                let answer = engine.snapshot().promql_instant(&eval.query, eval.at_ms, &PromOptions::default());
                match check(&eval, answer) {
                    Ok(()) => passed += 1,
                    Err(why) => failures.push(format!("line {}: {} — {why}", eval.line, eval.query)),
                }
            }
        }
    }
    Ok((passed, total, failures))
}

fn main() -> ExitCode {
    let files: Vec<String> = std::env::args().skip(1).filter(|a| a != "--verbose").collect();
    let verbose = std::env::args().any(|a| a == "--verbose");
    if files.is_empty() {
        eprintln!("usage: promqltest [--verbose] FILE.test...");
        return ExitCode::from(2);
    }
    let (mut passed, mut total) = (0, 0);
    for file in &files {
        match run_file(file) {
            Ok((p, t, failures)) => {
                println!(
                    "{:<24} {p:>4}/{t:<4} passed",
                    std::path::Path::new(file)
                        .file_name()
                        .map_or(file.clone(), |n| n.to_string_lossy().into_owned())
                );
                if verbose {
                    for f in failures {
                        println!("    {f}");
                    }
                }
                passed += p;
                total += t;
            }
            Err(e) => println!("{file}: cannot run: {e}"),
        }
    }
    println!("{:<24} {passed:>4}/{total:<4} passed", "all");
    ExitCode::SUCCESS
}
