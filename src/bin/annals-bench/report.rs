//! Figures, the markdown table with ratios, the JSON file, and facts about the machine.

use serde::Serialize;
use std::time::Duration;

/// Baseline columns of the bytes figures: the raw input, and `zstd -19` of it.
pub const RAW: &str = "raw";
pub const ZSTD: &str = "zstd -19";

/// Whether a larger or a smaller value is better, for the ratio column.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    Higher,
    Lower,
}

/// One measured figure of one engine. `value` is `None` when the engine could not run it
/// (the table says why in `note`).
#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    pub workload: String,
    pub figure: String,
    pub unit: String,
    pub better: Better,
    pub engine: String,
    pub value: Option<f64>,
    pub note: Option<String>,
}

/// Every figure of a run, in the order measured.
#[derive(Debug, Default, Serialize)]
pub struct Run {
    pub figures: Vec<Figure>,
    /// Query instances whose answers differed between engines (their times are not
    /// counted); a correct run has none.
    pub disagreements: Vec<String>,
    /// Queries a peer failed to answer (an error of its own, twice), left out of its
    /// times; printed, not a failure of the run.
    pub peer_errors: Vec<String>,
}

impl Run {
    pub fn add(&mut self, workload: &str, figure: &str, unit: &str, better: Better, engine: &str, value: f64) {
        self.push(workload, figure, unit, better, engine, Some(value), None);
    }

    pub fn missing(&mut self, workload: &str, figure: &str, unit: &str, better: Better, engine: &str, why: &str) {
        self.push(workload, figure, unit, better, engine, None, Some(why.into()));
    }

    #[allow(clippy::too_many_arguments)]
    fn push(&mut self, workload: &str, figure: &str, unit: &str, better: Better, engine: &str, value: Option<f64>, note: Option<String>) {
        self.figures.push(Figure {
            workload: workload.into(),
            figure: figure.into(),
            unit: unit.into(),
            better,
            engine: engine.into(),
            value,
            note,
        });
    }

    /// Latency percentiles of one query as two figures.
    pub fn latencies(&mut self, workload: &str, query: &str, engine: &str, timings: &mut [Duration]) {
        if timings.is_empty() {
            self.missing(workload, &format!("{query} p50"), "ms", Better::Lower, engine, "no instance agreed");
            return;
        }
        timings.sort();
        for q in [50.0, 99.0] {
            let ms = percentile(timings, q).as_secs_f64() * 1e3;
            self.add(workload, &format!("{query} p{q}"), "ms", Better::Lower, engine, ms);
        }
    }

    /// The markdown table: one row per (workload, figure), one column per engine, and the
    /// ratio of annals to each peer (above 1 means annals is better).
    pub fn markdown(&self, engines: &[&str]) -> String {
        let mut rows: Vec<(String, String, String, Better)> = Vec::new();
        for f in &self.figures {
            let key = (f.workload.clone(), f.figure.clone(), f.unit.clone(), f.better);
            if !rows.contains(&key) {
                rows.push(key);
            }
        }
        let peers: Vec<&str> = engines.iter().copied().filter(|e| *e != "annals").collect();
        let mut out = String::from("| workload | figure | unit |");
        for e in engines {
            out.push_str(&format!(" {e} |"));
        }
        for p in &peers {
            out.push_str(&format!(" annals vs {p} |"));
        }
        out.push_str("\n|---|---|---|");
        for _ in 0..engines.len() + peers.len() {
            out.push_str("---:|");
        }
        out.push('\n');
        for (workload, figure, unit, better) in rows {
            let value = |engine: &str| {
                self.figures
                    .iter()
                    .find(|f| f.workload == workload && f.figure == figure && f.engine == engine)
            };
            out.push_str(&format!("| {workload} | {figure} | {unit} |"));
            for e in engines {
                let cell = match value(e) {
                    Some(Figure { value: Some(v), .. }) => format_value(*v),
                    Some(Figure { note: Some(n), .. }) => n.clone(),
                    _ => "—".into(),
                };
                out.push_str(&format!(" {cell} |"));
            }
            for p in &peers {
                let ratio = match (value("annals").and_then(|f| f.value), value(p).and_then(|f| f.value)) {
                    (Some(a), Some(b)) if a > 0.0 && b > 0.0 => {
                        let r = if better == Better::Higher { a / b } else { b / a };
                        format!("{r:.2}x")
                    }
                    _ => "—".into(),
                };
                out.push_str(&format!(" {ratio} |"));
            }
            out.push('\n');
        }
        out
    }
}

pub fn format_value(v: f64) -> String {
    if v >= 1000.0 {
        crate::output::count(v.round() as u64)
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let rank = ((q / 100.0 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Cores, memory, kernel, CPU model and date of this run.
#[derive(Debug, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_bytes: u64,
    pub kernel: String,
    pub cpu: String,
    pub date: String,
}

pub fn machine() -> Machine {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let meminfo = read("/proc/meminfo");
    Machine {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        memory_bytes: meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024),
        kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
        cpu: cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default(),
        date: annals::time::format_rfc3339(annals::time::now_ns()),
    }
}

/// Peak resident memory (`VmHWM`) of a process, from `/proc`.
pub fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Bytes free for an unprivileged user on the file system holding `dir` (from `df`).
pub fn free_bytes(dir: &std::path::Path) -> Option<u64> {
    let output = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(dir)
        .output()
        .ok()?;
    String::from_utf8_lossy(&output.stdout).lines().nth(1)?.trim().parse().ok()
}

/// Bytes of every file under `dir`: what the files hold, not the blocks preallocated for
/// them.
pub fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_bytes(&e.path()),
            // A sparse file (InfluxDB preallocates its series file's segments) counts the
            // blocks written, any other its length (not its last block's slack).
            Ok(m) => m.len().min(std::os::unix::fs::MetadataExt::blocks(&m) * 512),
            Err(_) => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_say_how_many_times_better_annals_is() {
        let mut run = Run::default();
        run.add("W1", "ingest", "points/s", Better::Higher, "annals", 300.0);
        run.add("W1", "ingest", "points/s", Better::Higher, "sqlite", 100.0);
        run.add("W1", "q p50", "ms", Better::Lower, "annals", 2.0);
        run.add("W1", "q p50", "ms", Better::Lower, "sqlite", 1.0);
        let table = run.markdown(&["annals", "sqlite"]);
        assert!(table.contains("| W1 | ingest | points/s | 300.0 | 100.0 | 3.00x |"), "{table}");
        assert!(table.contains("| W1 | q p50 | ms | 2.000 | 1.000 | 0.50x |"), "{table}");
    }
}
