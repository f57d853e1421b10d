//! `--scaling`: each workload run at three sizes, ten times apart, and every figure shown at
//! each size with its growth per 10x of data, so that a cost that grows faster than the
//! data (or grows where the answer does not) stands out.

use crate::report::{Run, format_value};
use crate::{Args, BenchError, Binaries, Workload};
use serde::Serialize;
use std::path::Path;

/// One size of one workload and everything measured at it.
#[derive(Serialize)]
pub struct Step {
    pub workload: &'static str,
    /// "100 hosts", "1000000 lines".
    pub size: String,
    /// Points (W1) or lines (W2) loaded.
    pub data: f64,
    pub run: Run,
}

/// W1 host counts and W2 line counts of a scaling run.
fn sizes(quick: bool) -> ([usize; 3], [u64; 3]) {
    if quick {
        ([2, 20, 200], [2_000, 20_000, 200_000])
    } else {
        ([10, 100, 1000], [100_000, 1_000_000, 5_000_000])
    }
}

/// Queries whose answer is the same size whatever the data's size: one host's rows or
/// buckets, eight hosts' hours, the newest 100 lines of a day, the month's hourly counts.
/// Their cost should stay flat; the table says where it does not.
const FLAT_ANSWERS: [&str; 9] = [
    "range-10k",
    "single-groupby-1-1-1",
    "single-groupby-5-1-12",
    "cpu-max-all-8",
    "high-cpu-1",
    "search term",
    "search phrase",
    "search boolean",
    "count by level per hour",
];

/// Runs W1 and W2 (those `args` asks for) at each size, each in a directory of its own
/// under `dir` that is removed once measured.
pub fn run(args: &Args, binaries: &Binaries, dir: &Path) -> Result<Vec<Step>, BenchError> {
    let (hosts, lines) = sizes(args.quick);
    let mut steps = Vec::new();
    if args.runs(Workload::W1) {
        for n in hosts {
            let mut step = args.clone();
            step.workload = Workload::W1;
            step.hosts = Some(n);
            step.scaling = false;
            let points = step.w1_config().points() as f64;
            let size = format!("{n} hosts");
            steps.push(measure_step(&step, binaries, dir, "W1", size, points)?);
        }
    }
    if args.runs(Workload::W2) {
        for n in lines {
            let mut step = args.clone();
            step.workload = Workload::W2;
            step.lines = Some(n);
            step.scaling = false;
            let size = format!("{n} lines");
            steps.push(measure_step(&step, binaries, dir, "W2", size, n as f64)?);
        }
    }
    Ok(steps)
}

fn measure_step(args: &Args, binaries: &Binaries, dir: &Path, workload: &'static str, size: String, data: f64) -> Result<Step, BenchError> {
    println!("== scaling: {workload} at {size}");
    let step_dir = dir.join(format!("{workload}-{}", size.replace(' ', "-")).to_lowercase());
    crate::create_dir(&step_dir)?;
    let run = crate::measure(args, &binaries.engines(args), &step_dir)?;
    let _ = std::fs::remove_dir_all(&step_dir);
    Ok(Step { workload, size, data, run })
}

/// `(last / first) ^ (1 / log10(data_last / data_first))`: how many times the figure grows
/// when the data grows ten times (1.00x: flat; 10x: in proportion to the data).
pub fn growth_per_10x(first: (f64, f64), last: (f64, f64)) -> Option<f64> {
    let ((data_a, a), (data_b, b)) = (first, last);
    if a <= 0.0 || b <= 0.0 || data_b <= data_a {
        return None;
    }
    Some((b / a).powf(1.0 / (data_b / data_a).log10()))
}

/// The scaling table: per workload, one row per figure and engine, a column per size and
/// the growth per 10x; rows of queries with answers that do not grow say whether the cost
/// stayed flat (no more than 1.5x per 10x).
pub fn markdown(steps: &[Step]) -> String {
    let mut out = String::new();
    for workload in ["W1", "W2"] {
        let of: Vec<&Step> = steps.iter().filter(|s| s.workload == workload).collect();
        if of.is_empty() {
            continue;
        }
        out.push_str(&format!("| {workload} figure | unit | engine |"));
        for step in &of {
            out.push_str(&format!(" {} |", step.size));
        }
        out.push_str(" growth per 10x | answer size |\n|---|---|---|");
        for _ in 0..of.len() + 1 {
            out.push_str("---:|");
        }
        out.push_str("---|\n");
        let mut rows: Vec<(String, String, String)> = Vec::new();
        for step in &of {
            for f in &step.run.figures {
                let key = (f.figure.clone(), f.unit.clone(), f.engine.clone());
                if !rows.contains(&key) {
                    rows.push(key);
                }
            }
        }
        // Engines in the run's column order, figures in the order measured.
        let engines = crate::columns(&of[0].run);
        rows.sort_by_key(|(figure, _, engine)| {
            let first = rows_order(&of, figure);
            let column = engines.iter().position(|e| e == engine).unwrap_or(usize::MAX);
            (first, column)
        });
        for (figure, unit, engine) in rows {
            let values: Vec<Option<f64>> = of
                .iter()
                .map(|step| {
                    step.run
                        .figures
                        .iter()
                        .find(|f| f.figure == figure && f.engine == engine)
                        .and_then(|f| f.value)
                })
                .collect();
            if values.iter().all(Option::is_none) {
                continue;
            }
            out.push_str(&format!("| {figure} | {unit} | {engine} |"));
            for v in &values {
                out.push_str(&format!(" {} |", v.map(format_value).unwrap_or_else(|| "—".into())));
            }
            let growth = match (values.first().copied().flatten(), values.last().copied().flatten()) {
                (Some(a), Some(b)) => growth_per_10x((of[0].data, a), (of[of.len() - 1].data, b)),
                _ => None,
            };
            let flat = FLAT_ANSWERS.iter().any(|q| figure.starts_with(q));
            let note = match (flat, growth) {
                (false, _) => "grows",
                (true, Some(g)) if g > 1.5 => "flat; cost grows",
                (true, _) => "flat",
            };
            match growth {
                Some(g) => out.push_str(&format!(" {g:.2}x | {note} |\n")),
                None => out.push_str(&format!(" — | {note} |\n")),
            }
        }
        out.push('\n');
    }
    out
}

/// The position of a figure's first appearance in a workload's steps.
fn rows_order(steps: &[&Step], figure: &str) -> usize {
    let mut seen: Vec<&str> = Vec::new();
    for step in steps {
        for f in &step.run.figures {
            if !seen.contains(&f.figure.as_str()) {
                seen.push(&f.figure);
            }
        }
    }
    seen.iter().position(|f| *f == figure).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Better;

    #[test]
    fn growth_is_per_tenfold_data() {
        assert_eq!(growth_per_10x((10.0, 2.0), (1000.0, 2.0)), Some(1.0));
        let linear = growth_per_10x((10.0, 1.0), (1000.0, 100.0)).unwrap();
        assert!((linear - 10.0).abs() < 1e-9, "{linear}");
        let root = growth_per_10x((1e5, 4.0), (5e6, 4.0 * 50f64.sqrt())).unwrap();
        assert!((root - 10f64.sqrt()).abs() < 1e-9, "{root}");
        assert_eq!(growth_per_10x((10.0, 0.0), (100.0, 1.0)), None);
    }

    #[test]
    fn the_table_flags_a_flat_answer_whose_cost_grows() {
        let step = |size: &str, data: f64, range: f64, lastpoint: f64| {
            let mut run = Run::default();
            run.add("W1", "range-10k p50", "ms", Better::Lower, "annals", range);
            run.add("W1", "lastpoint p50", "ms", Better::Lower, "annals", lastpoint);
            Step {
                workload: "W1",
                size: size.into(),
                data,
                run,
            }
        };
        let table = markdown(&[
            step("10 hosts", 1e6, 1.0, 1.0),
            step("100 hosts", 1e7, 1.1, 10.0),
            step("1000 hosts", 1e8, 4.0, 100.0),
        ]);
        assert!(
            table.contains("| range-10k p50 | ms | annals | 1.000 | 1.100 | 4.000 | 2.00x | flat; cost grows |"),
            "{table}"
        );
        assert!(
            table.contains("| lastpoint p50 | ms | annals | 1.000 | 10.0 | 100.0 | 10.00x | grows |"),
            "{table}"
        );
    }
}
