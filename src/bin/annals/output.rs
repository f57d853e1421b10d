//! Formatting shared by the commands: tables, CSV, JSON values, times.

use annals::FieldValue;
use clap::ValueEnum;
use std::io::Write;

/// How rows are printed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// One JSON object per line.
    Json,
    /// Aligned columns for reading.
    Table,
}

/// How times are printed.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TimeFormat {
    /// RFC 3339 in UTC.
    Rfc3339,
    /// Integer nanoseconds since the epoch.
    Ns,
}

impl TimeFormat {
    pub fn format(self, ts: i64) -> String {
        match self {
            TimeFormat::Rfc3339 => annals::time::format_rfc3339(ts),
            TimeFormat::Ns => ts.to_string(),
        }
    }
}

/// A value as text for CSV and tables.
pub fn text(value: &FieldValue) -> String {
    value.to_string()
}

/// Writes a CSV line.
pub fn csv_line(out: &mut impl Write, cells: &[String]) -> std::io::Result<()> {
    let line: Vec<_> = cells.iter().map(|c| annals::query::export::csv_cell(c)).collect();
    writeln!(out, "{}", line.join(","))
}

/// Prints rows as aligned columns, numbers right-aligned.
pub fn table(out: &mut impl Write, header: &[String], rows: &[Vec<String>]) -> std::io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| rows.iter().all(|r| r[i].is_empty() || r[i].parse::<f64>().is_ok()) && !rows.is_empty())
        .collect();
    let line = |cells: &[String], out: &mut dyn Write| -> std::io::Result<()> {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(&numeric)
            .map(|((c, &w), &num)| if num { format!("{c:>w$}") } else { format!("{c:<w$}") })
            .collect();
        writeln!(out, "{}", parts.join("  ").trim_end())
    };
    line(header, out)?;
    let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
    writeln!(out, "{}", rule.join("  "))?;
    for row in rows {
        line(row, out)?;
    }
    Ok(())
}

/// A human size: 1.5 MiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

/// A count with thousands separators: 8,640,000.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// True when stdout is a terminal.
pub fn stdout_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal()
}

/// A spinner counting rows on stderr while `what` runs; hidden when stderr is not a
/// terminal.
pub fn rows_spinner(what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {msg} {human_pos} rows ({per_sec})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
